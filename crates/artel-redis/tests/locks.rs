//! Redis locks with real processes: mutual exclusion, expiry after a killed holder,
//! growing fences, a lost lease reported.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use artel_core::SystemClock;
use artel_lock::{LockError, Locks};
use artel_redis::{RedisBroker, RedisConfig};

const PREFIX: &str = "ARTEL_LOCK_TEST_PREFIX";
const DIR: &str = "ARTEL_LOCK_TEST_DIR";
const MODE: &str = "ARTEL_LOCK_TEST_MODE";
const ROUNDS: u64 = 1000;

fn url() -> String {
    std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

async fn broker(prefix: &str) -> Option<RedisBroker> {
    let config = RedisConfig { prefix: prefix.to_owned(), ..RedisConfig::default() };
    match RedisBroker::connect_with(&url(), config, Arc::new(SystemClock)).await {
        Ok(broker) => Some(broker),
        Err(error) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("Redis is required (ARTEL_REQUIRE_SERVICES=1) but unreachable: {error}")
        }
        Err(error) => {
            eprintln!("skipped: no Redis at {} ({error})", url());
            None
        }
    }
}

/// A scratch prefix and directory, removed at the end.
struct Scratch {
    prefix: String,
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let unique = format!("artel-test-lock-{}-{}", std::process::id(), fastrand::u64(..));
        let dir = std::env::temp_dir().join(&unique);
        std::fs::create_dir_all(&dir).expect("dir");
        Self { prefix: unique, dir }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let script = format!(
            "redis-cli -u '{}' --scan --pattern '{}:*' | xargs -r redis-cli -u '{}' del",
            url(),
            self.prefix,
            url()
        );
        let _ = Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).status();
    }
}

/// Not a test: the child role (hammer or hold the lock); run as a test it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_child() {
    let (Ok(prefix), Some(dir), Ok(mode)) = (std::env::var(PREFIX), std::env::var_os(DIR), std::env::var(MODE)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let locks = broker(&prefix).await.expect("Redis").locks(Duration::from_millis(500));
    if mode == "hold" {
        let guard = locks.acquire("shared", Duration::from_secs(10)).await.expect("acquire");
        std::fs::write(dir.join("held"), guard.fence().to_string()).expect("note");
        tokio::time::sleep(Duration::from_secs(60)).await;
        return;
    }
    artel_broker_tests::locks::take_turns(&locks, &dir, ROUNDS).await;
}

fn child(scratch: &Scratch, mode: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["lock_child", "--exact", "--quiet", "--test-threads=1"])
        .env(PREFIX, &scratch.prefix)
        .env(DIR, &scratch.dir)
        .env(MODE, mode)
        .stdout(Stdio::null());
    command
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_taking_a_redis_lock_a_thousand_times_each_never_overlap() {
    let scratch = Scratch::new();
    let Some(broker) = broker(&scratch.prefix).await else { return };
    let children: Vec<_> = (0..2).map(|_| child(&scratch, "hammer").spawn().expect("start a child")).collect();
    for mut child in children {
        assert!(child.wait().expect("child").success(), "a child saw an overlap or a shrinking fence");
    }
    assert_eq!(read_u64(&scratch.dir.join("counter")), Some(2 * ROUNDS));
    let locks = broker.locks(Duration::from_millis(500));
    let next = locks.acquire("shared", Duration::from_secs(2)).await.expect("free");
    assert_eq!(next.fence(), 2 * ROUNDS + 1, "one fence per acquisition, strictly increasing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_redis_lock_frees_itself_within_its_lease() {
    let scratch = Scratch::new();
    let Some(broker) = broker(&scratch.prefix).await else { return };
    let mut holder = child(&scratch, "hold").spawn().expect("start the holder");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let held = loop {
        if let Some(fence) = read_u64(&scratch.dir.join("held")) {
            break fence;
        }
        assert!(std::time::Instant::now() < deadline, "the holder never took the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let locks = broker.locks(Duration::from_millis(500));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(locks.try_acquire("shared").await.expect("try").is_none(), "renewed past its first lease while alive");
    holder.kill().expect("kill -9 the holder");
    holder.wait().expect("reaped");
    let guard = locks.acquire("shared", Duration::from_secs(2)).await.expect("free within the lease");
    assert!(guard.fence() > held, "{} after {held}", guard.fence());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_is_reported_by_the_guard() {
    let scratch = Scratch::new();
    let Some(broker) = broker(&scratch.prefix).await else { return };
    let guard = broker.locks(Duration::from_millis(150)).acquire("lost", Duration::from_secs(1)).await.expect("held");
    assert!(guard.check().is_ok());
    // Someone else takes the key, as after a lapse during a long pause.
    let key = format!("{}:lock:lost", scratch.prefix);
    let status =
        Command::new("redis-cli").args(["-u", &url(), "set", &key, "someone-else"]).stdout(Stdio::null()).status();
    assert!(status.expect("redis-cli").success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = guard.check().expect_err("lost");
    assert!(matches!(err, LockError::Lost { .. }), "{err}");
    assert!(err.to_string().contains("was lost"), "{err}");
    drop(guard);
    tokio::time::sleep(Duration::from_millis(100)).await; // the release runs after the drop
    let kept = Command::new("redis-cli").args(["-u", &url(), "get", &key]).output().expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&kept.stdout).trim(), "someone-else", "a lost guard never frees another's lock");
}
