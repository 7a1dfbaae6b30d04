//! A private PostgreSQL cluster (initdb in a temp dir) restarted in the middle of a
//! 1,000-task run: the worker and the producer reconnect on their own, and every task
//! ends SUCCESS.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use artel::{App, Signature, State};
use serde_json::json;
use support::WorkerProcess;

const TASKS: usize = 1_000;

/// A cluster of the test's own, run as the `postgres` user, stopped and removed at the end.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    /// `None` when this machine cannot make one (no PostgreSQL binaries, or not root to
    /// run them as `postgres`): allowed unless services are required.
    fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.filter_map(Result::ok).map(|v| v.path().join("bin")).max());
        let root = running_as_root();
        let Some(bin) = bin.filter(|bin| bin.join("initdb").exists() && root) else {
            assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "initdb (run as root) is required");
            eprintln!("skipped: no PostgreSQL binaries to run a private cluster as root");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("artel-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        as_postgres(&format!("chown postgres {}", dir.display()), false);
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let cluster = Self { bin, dir, port };
        cluster.run(&format!("initdb -D {} -A trust -U postgres", cluster.dir.display()));
        cluster.pg_ctl("start");
        Some(cluster)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, command: &str) {
        as_postgres(&format!("{}/{command}", self.bin.display()), true);
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!("-c listen_addresses=127.0.0.1 -p {} -k {}", self.port, self.dir.display());
        self.run(&format!("pg_ctl -D {dir} -l {dir}/log -w -m fast -o '{options}' {action}", dir = self.dir.display()));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("su")
            .args([
                "postgres",
                "-c",
                &format!("{}/pg_ctl -D {} -m immediate stop", self.bin.display(), self.dir.display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

fn as_postgres(command: &str, as_user: bool) {
    let status = if as_user {
        Command::new("su").args(["postgres", "-c", command]).stdout(Stdio::null()).status()
    } else {
        Command::new("sh").args(["-c", command]).status()
    };
    assert!(status.is_ok_and(|s| s.success()), "{command}");
}

fn log_tail(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("log")).unwrap_or_default().lines().rev().take(20).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_succeeds_across_a_server_restart() {
    let Some(cluster) = Cluster::start() else { return };
    let url = format!("{}?schema=artel&poll_ms=100&lease_ms=5000", cluster.url());
    let app = App::connect(&url).await.unwrap_or_else(|e| panic!("{e}\n{}", log_tail(&cluster.dir)));
    let mut ids = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        ids.push(app.send(Signature::new("sleep").with_args(vec![json!(0.01)])).await.expect("published"));
    }
    let mut worker = WorkerProcess::start(&url, &["-c", "8"]);
    let done = |states: &[Option<artel::TaskResult>]| {
        states.iter().filter(|r| r.as_ref().is_some_and(|r| r.status == State::Success)).count()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while done(&app.backend().results().get_many(&ids).await.expect("read")) < TASKS / 4 {
        assert!(Instant::now() < deadline, "the worker did not get going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let restarted_at = Instant::now();
    cluster.pg_ctl("restart");
    eprintln!("restarted the server in {:?}", restarted_at.elapsed());
    let mut finished = 0;
    while finished < TASKS {
        assert!(Instant::now() < deadline, "{finished} of {TASKS} succeeded within 90 s\n{}", log_tail(&cluster.dir));
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(states) = app.backend().results().get_many(&ids).await {
            finished = done(&states);
        }
    }
    eprintln!("all {TASKS} succeeded {:?} after the restart began", restarted_at.elapsed());
    assert!(worker.0.try_wait().expect("worker").is_none(), "the same worker, never restarted");
    worker.signal("-TERM");
    worker.wait(Duration::from_secs(30));
}
