//! `artel supervise` with real processes: services restarted when killed, a crash loop
//! marked failed, no orphan left on SIGTERM, SIGHUP converging on a new copy count.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A supervisor over a scratch config; killed (with its group's leftovers) at the end.
struct Supervised {
    child: Child,
    config: PathBuf,
}

impl Supervised {
    fn start(config: &str) -> Self {
        let path = std::env::temp_dir().join(format!("artel-supervise-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&path, config).expect("write the config");
        let child = Command::new(env!("CARGO_BIN_EXE_artel"))
            .args(["supervise", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the supervisor");
        Self { child, config: path }
    }

    fn rewrite(&self, config: &str) {
        std::fs::write(&self.config, config).expect("rewrite the config");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// `artel supervise status --json`, once the socket answers.
    fn status(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let output = Command::new(env!("CARGO_BIN_EXE_artel"))
                .args(["supervise", "--config"])
                .arg(&self.config)
                .args(["status", "--json"])
                .output()
                .expect("status");
            if let Ok(Value::Array(copies)) = serde_json::from_slice(&output.stdout) {
                return copies;
            }
            assert!(Instant::now() < deadline, "no status: {}", String::from_utf8_lossy(&output.stderr));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `check` holds for the status (10 s at most).
    fn until(&self, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let copies = self.status();
            if check(&copies) {
                return copies;
            }
            assert!(Instant::now() < deadline, "{what}: {copies:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Supervised {
    /// Stops the supervisor with SIGTERM, so it stops its copies (which live in process
    /// groups of their own and would outlive a SIGKILL); SIGKILL only if it hangs.
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
        let _ = std::fs::remove_file(self.config.with_extension("sock"));
    }
}

fn running_pids(copies: &[Value], service: &str) -> Vec<u64> {
    copies
        .iter()
        .filter(|c| c["service"] == service && c["state"] == "running")
        .filter_map(|c| c["pid"].as_u64())
        .collect()
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

const SLEEPERS: &str = r#"
grace = "2s"
[[service]]
name = "sleeper"
command = ["sleep", "1000"]
copies = 2
"#;

#[test]
fn a_killed_worker_is_restarted_at_once() {
    let db = std::env::temp_dir().join(format!("artel-supervised-{}.db", uuid::Uuid::new_v4()));
    let config = format!(
        "grace = \"2s\"\n[[service]]\nname = \"worker\"\ncommand = [{:?}, \"--broker\", {:?}, \"worker\", \"-c\", \"1\"]\ncopies = 2\n",
        env!("CARGO_BIN_EXE_artel"),
        format!("sqlite://{}", db.display()),
    );
    let supervised = Supervised::start(&config);
    let copies = supervised.until("two workers running", |c| running_pids(c, "worker").len() == 2);
    let victim = running_pids(&copies, "worker")[0];
    let killed = Instant::now();
    Command::new("kill").args(["-9", &victim.to_string()]).status().expect("kill -9");
    let copies = supervised.until("a new pid", |c| {
        let pids = running_pids(c, "worker");
        pids.len() == 2 && !pids.contains(&victim)
    });
    assert!(killed.elapsed() < Duration::from_secs(1), "replaced in {:?}", killed.elapsed());
    assert!(copies.iter().any(|c| c["restarts"] == 1), "{copies:?}");
    drop(supervised);
    artel::sqlite::remove_database(&db);
}

#[test]
fn a_service_that_exits_at_once_backs_off_then_is_marked_failed() {
    let supervised = Supervised::start("[[service]]\nname = \"broken\"\ncommand = [\"false\"]\n");
    let started = Instant::now();
    let copies = supervised.until("marked failed", |c| c.iter().any(|c| c["state"] == "failed"));
    // Five quick exits: four restarts, after pauses of 100, 200, 400 and 800 ms.
    assert!(started.elapsed() >= Duration::from_millis(1400), "backed off: {:?}", started.elapsed());
    assert_eq!(copies[0]["restarts"], 4, "{copies:?}");
    let status = Command::new(env!("CARGO_BIN_EXE_artel"))
        .args(["supervise", "--config"])
        .arg(&supervised.config)
        .arg("status")
        .stdout(Stdio::null())
        .status()
        .expect("status");
    assert_eq!(status.code(), Some(1), "status says a copy failed");
}

#[test]
fn sigterm_stops_every_copy_and_leaves_no_orphan() {
    // Each copy starts a grandchild in its group: both must go.
    let supervised = Supervised::start(
        "grace = \"2s\"\n[[service]]\nname = \"family\"\ncommand = [\"sh\", \"-c\", \"sleep 1000 & wait\"]\ncopies = 2\n",
    );
    let copies = supervised.until("two copies", |c| running_pids(c, "family").len() == 2);
    let leaders = running_pids(&copies, "family");
    let children_of_leaders = || -> Vec<u64> {
        std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| s.rsplit(')').next().map(str::to_owned))
                    .and_then(|rest| rest.split_whitespace().nth(1).and_then(|ppid| ppid.parse::<u64>().ok()))
                    .is_some_and(|ppid| leaders.contains(&ppid))
            })
            .collect()
    };
    // A copy counts as running as soon as its shell does, a moment before it forks.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut grandchildren = children_of_leaders();
    while grandchildren.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        grandchildren = children_of_leaders();
    }
    assert_eq!(grandchildren.len(), 2, "each copy has its sleep");
    supervised.signal("-TERM");
    let mut supervisor = supervised;
    let deadline = Instant::now() + Duration::from_secs(10);
    while supervisor.child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "the supervisor did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in leaders.iter().chain(&grandchildren) {
        assert!(!alive(*pid), "{pid} outlived the supervisor");
    }
}

#[test]
fn sighup_converges_on_a_new_copy_count() {
    let supervised = Supervised::start(SLEEPERS);
    let before = supervised.until("two copies", |c| running_pids(c, "sleeper").len() == 2);
    supervised.rewrite(&SLEEPERS.replace("copies = 2", "copies = 3"));
    supervised.signal("-HUP");
    let grown = supervised.until("three copies", |c| running_pids(c, "sleeper").len() == 3);
    let kept = running_pids(&before, "sleeper");
    assert!(kept.iter().all(|pid| running_pids(&grown, "sleeper").contains(pid)), "unchanged copies keep running");
    supervised.rewrite(&SLEEPERS.replace("copies = 2", "copies = 1"));
    supervised.signal("-HUP");
    supervised.until("one copy", |c| running_pids(c, "sleeper").len() == 1 && c.len() == 1);
}
