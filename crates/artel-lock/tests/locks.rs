//! Locks, in this process and across real processes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use artel_lock::{FileLocks, LocalLocks, LockError, Locks};

const CHILD_DIR: &str = "ARTEL_LOCK_TEST_DIR";
const CHILD_MODE: &str = "ARTEL_LOCK_TEST_MODE";
const ROUNDS: u64 = 1000;

fn scratch() -> PathBuf {
    std::env::temp_dir().join(format!("artel-lock-{}-{}", std::process::id(), fastrand_suffix()))
}

fn fastrand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// Not a test: the child role. With the test's environment it hammers or holds the lock;
/// run as a test it returns at once.
#[tokio::test]
async fn lock_child() {
    let (Some(dir), Some(mode)) = (std::env::var_os(CHILD_DIR), std::env::var(CHILD_MODE).ok()) else { return };
    let dir = PathBuf::from(dir);
    let locks = FileLocks::new(&dir);
    if mode == "hold" {
        let guard = locks.acquire("shared", Duration::from_secs(10)).await.expect("acquire");
        println!("held {}", guard.fence());
        tokio::time::sleep(Duration::from_secs(60)).await;
        return;
    }
    artel_broker_tests::locks::take_turns(&locks, &dir, ROUNDS).await;
}

fn child(dir: &Path, mode: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command.args(["lock_child", "--exact", "--quiet", "--test-threads=1"]).env(CHILD_DIR, dir).env(CHILD_MODE, mode);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_taking_a_file_lock_a_thousand_times_each_never_overlap() {
    let dir = scratch();
    std::fs::create_dir_all(&dir).expect("dir");
    let children: Vec<_> =
        (0..2).map(|_| child(&dir, "hammer").stdout(Stdio::null()).spawn().expect("start a child")).collect();
    for mut child in children {
        assert!(child.wait().expect("child").success(), "a child saw an overlap or a shrinking fence");
    }
    assert_eq!(std::fs::read_to_string(dir.join("counter")).expect("counter").trim(), (2 * ROUNDS).to_string());
    let next = FileLocks::new(&dir).try_acquire("shared").await.expect("try").expect("free");
    assert_eq!(next.fence(), 2 * ROUNDS + 1, "one fence per acquisition, strictly increasing");
    drop(next);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_file_lock_is_free_at_once_with_a_larger_fence() {
    let dir = scratch();
    std::fs::create_dir_all(&dir).expect("dir");
    let mut holder = child(&dir, "hold").stdout(Stdio::piped()).spawn().expect("start the holder");
    let locks = FileLocks::new(&dir);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let held_fence = loop {
        let text = std::fs::read_to_string(dir.join("shared.lock")).unwrap_or_default();
        if let (Ok(n), Ok(None)) = (text.trim().parse::<u64>(), locks.try_acquire("shared").await) {
            break n;
        }
        assert!(std::time::Instant::now() < deadline, "the holder never took the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let err = locks.acquire("shared", Duration::from_millis(100)).await.expect_err("held");
    assert!(matches!(err, LockError::Timeout { .. }), "{err}");
    holder.kill().expect("kill -9 the holder");
    holder.wait().expect("reaped");
    let guard = locks.acquire("shared", Duration::from_secs(2)).await.expect("free once its holder died");
    assert!(guard.fence() > held_fence, "{} after {held_fence}", guard.fence());
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn local_locks_exclude_time_out_and_fence() {
    let locks = LocalLocks::new();
    let first = locks.try_acquire("k").await.expect("try").expect("free");
    assert!(locks.try_acquire("k").await.expect("try").is_none(), "held");
    assert!(locks.try_acquire("other").await.expect("try").is_some(), "keys are separate");
    let err = locks.acquire("k", Duration::from_millis(20)).await.expect_err("times out");
    assert!(err.to_string().contains("still held"), "{err}");
    let fence = first.fence();
    drop(first);
    let second = locks.acquire("k", Duration::from_millis(20)).await.expect("free again");
    assert!(second.fence() > fence);
    assert!(matches!(FileLocks::new(scratch()).try_acquire("../etc").await, Err(LockError::InvalidKey(_))));
}
