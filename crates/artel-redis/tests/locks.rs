//! Redis locks with real processes: mutual exclusion, expiry after a killed holder,
//! growing fences, a lost lease reported (fenced values and unique keys: the conformance
//! suite).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use artel_broker_tests::locks::{self, Fences, Scratch};
use artel_core::SystemClock;
use artel_lock::{LockError, Locks};
use artel_redis::{RedisBroker, RedisConfig};

const LEASE: Duration = Duration::from_millis(500);

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

/// Deletes a test's keys when dropped.
struct Keys(String);

impl Drop for Keys {
    fn drop(&mut self) {
        let script =
            format!("redis-cli -u '{0}' --scan --pattern '{1}:*' | xargs -r redis-cli -u '{0}' del", url(), self.0);
        let _ = Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).status();
    }
}

/// Not a test: the child role (hammer or hold the lock); run as a test it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_child() {
    let Some(role) = locks::role() else { return };
    let broker = broker(&role.name).await.expect("Redis");
    locks::play(&role, &broker.locks(LEASE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_taking_a_redis_lock_a_thousand_times_each_never_overlap() {
    let scratch = Scratch::new("redis");
    let Some(broker) = broker(&scratch.name).await else { return };
    let _keys = Keys(scratch.name.clone());
    locks::two_processes_never_overlap(&scratch, &broker.locks(LEASE), Fences::Counted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_redis_lock_frees_itself_within_its_lease() {
    let scratch = Scratch::new("redis");
    let Some(broker) = broker(&scratch.name).await else { return };
    let _keys = Keys(scratch.name.clone());
    locks::a_killed_holder_frees_the_lock(&scratch, &broker.locks(LEASE), Some(LEASE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_is_reported_by_the_guard() {
    let scratch = Scratch::new("redis");
    let Some(broker) = broker(&scratch.name).await else { return };
    let _keys = Keys(scratch.name.clone());
    let guard = broker.locks(Duration::from_millis(150)).acquire("lost", Duration::from_secs(1)).await.expect("held");
    assert!(guard.check().is_ok());
    // Someone else takes the key, as after a lapse during a long pause.
    let key = format!("{}:lock:lost", scratch.name);
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
