//! A private PostgreSQL cluster for tests that restart the server or change its settings:
//! `initdb` in a temp dir, run as the `postgres` user on a free loopback port, stopped and
//! removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running cluster of the test's own.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    /// Its data directory (also where its socket and log are).
    pub dir: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// `-c name=value` settings it runs with.
    settings: Vec<String>,
}

impl Cluster {
    /// Starts a cluster with `settings` (`name=value`); `None` when this machine cannot
    /// (no PostgreSQL binaries, or not root to run them as `postgres`), which is allowed
    /// unless services are required.
    pub fn start(settings: &[&str]) -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.filter_map(Result::ok).map(|v| v.path().join("bin")).max());
        let root = Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"));
        let Some(bin) = bin.filter(|bin| bin.join("initdb").exists() && root) else {
            assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "initdb (run as root) is required");
            eprintln!("skipped: no PostgreSQL binaries to run a private cluster as root");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("artel-pg-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        run(Command::new("chown").args(["postgres", &dir.display().to_string()]));
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let settings = settings.iter().map(|s| format!("-c {s}")).collect();
        let cluster = Self { bin, dir, port, settings };
        cluster.as_postgres(&format!("initdb -D {} -A trust -U postgres", cluster.dir.display()));
        cluster.pg_ctl("start");
        Some(cluster)
    }

    /// `postgres://postgres@HOST:PORT/postgres`, by `host` (a name the server's
    /// certificate may list, or not).
    pub fn url(&self, host: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres", self.port)
    }

    /// Runs `pg_ctl ACTION` (`start`, `restart`, `reload`), waiting for it.
    pub fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} {}",
            self.port,
            self.dir.display(),
            self.settings.join(" ")
        );
        self.as_postgres(&format!(
            "pg_ctl -D {dir} -l {dir}/log -w -m fast -o '{options}' {action}",
            dir = self.dir.display()
        ));
    }

    /// Writes `text` to `name` in the data directory, owned by `postgres` and readable
    /// only by it (as the server wants its key).
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write");
        run(Command::new("chown").args(["postgres", &path.display().to_string()]));
        run(Command::new("chmod").args(["600", &path.display().to_string()]));
        path
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir)
    }

    fn as_postgres(&self, command: &str) {
        run(Command::new("su").args(["postgres", "-c", &format!("{}/{command}", self.bin.display())]));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let stop = format!("{}/pg_ctl -D {} -m immediate stop", self.bin.display(), self.dir.display());
        let _ = Command::new("su").args(["postgres", "-c", &stop]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) {
    let status = command.stdout(Stdio::null()).status();
    assert!(status.is_ok_and(|s| s.success()), "{command:?}");
}

fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
