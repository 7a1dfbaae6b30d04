//! etcd locks with real processes: mutual exclusion, expiry after a killed holder,
//! growing fences, a lost lease reported; fenced values.
//! Skipped with a message when no etcd answers, unless ARTEL_REQUIRE_SERVICES=1.

use std::time::Duration;

use artel_broker_tests::locks::{self, Fences, Scratch};
use artel_etcd::EtcdLocks;
use artel_lock::{LockError, Locks};

/// etcd leases are whole seconds.
const LEASE: Duration = Duration::from_secs(2);

fn endpoint() -> String {
    std::env::var("ARTEL_ETCD_URL").unwrap_or_else(|_| "http://127.0.0.1:2379".to_owned())
}

async fn etcd(prefix: &str) -> Option<EtcdLocks> {
    match EtcdLocks::connect(&[&endpoint()], prefix).await {
        Ok(locks) => Some(locks),
        Err(error) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("etcd is required (ARTEL_REQUIRE_SERVICES=1) but unreachable: {error}")
        }
        Err(error) => {
            eprintln!("skipped: {error}");
            None
        }
    }
}

/// Not a test: the child role (hammer or hold the lock); run as a test it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_child() {
    let Some(role) = locks::role() else { return };
    let etcd = etcd(&role.name).await.expect("etcd");
    locks::play(&role, &etcd.locks(LEASE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_taking_an_etcd_lock_a_thousand_times_each_never_overlap() {
    let scratch = Scratch::new("etcd");
    let Some(etcd) = etcd(&scratch.name).await else { return };
    locks::two_processes_never_overlap(&scratch, &etcd.locks(LEASE), Fences::Revisions).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_etcd_lock_frees_itself_within_its_lease() {
    let scratch = Scratch::new("etcd");
    let Some(etcd) = etcd(&scratch.name).await else { return };
    locks::a_killed_holder_frees_the_lock(&scratch, &etcd.locks(LEASE), Some(LEASE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_etcd_lease_is_reported_by_the_guard() {
    let scratch = Scratch::new("etcd");
    let Some(etcd) = etcd(&scratch.name).await else { return };
    let locks = etcd.locks(Duration::from_secs(1));
    let guard = locks.acquire("lost", Duration::from_secs(5)).await.expect("held");
    assert!(guard.check().is_ok());
    // Someone else's holder replaces the key, as after a lapse during a long pause.
    let mut client = etcd_client::Client::connect([endpoint()], None).await.expect("connect");
    client.put(format!("{}/lock/lost", scratch.name), "someone-else", None).await.expect("put");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let err = guard.check().expect_err("lost");
    assert!(matches!(err, LockError::Lost { .. }), "{err}");
    drop(guard);
    tokio::time::sleep(Duration::from_millis(200)).await; // the release runs after the drop
    let kept = client.get(format!("{}/lock/lost", scratch.name), None).await.expect("get");
    assert_eq!(kept.kvs().first().map(|kv| kv.value().to_vec()), Some(b"someone-else".to_vec()));
    client.delete(format!("{}/", scratch.name), Some(etcd_client::DeleteOptions::new().with_prefix())).await.ok();
}

#[tokio::test]
async fn etcd_fenced_values_refuse_stale_writers() {
    let scratch = Scratch::new("etcd");
    let Some(etcd) = etcd(&scratch.name).await else { return };
    locks::fenced_values_refuse_stale_writers(&etcd).await;
    let mut client = etcd_client::Client::connect([endpoint()], None).await.expect("connect");
    client.delete(format!("{}/", scratch.name), Some(etcd_client::DeleteOptions::new().with_prefix())).await.ok();
}
