//! Locks, in this process and across real processes.

use std::time::Duration;

use artel_broker_tests::locks::{self, Fences, Scratch};
use artel_lock::{FileLocks, LocalLocks, LockError, Locks};

/// Not a test: the child role (hammer or hold the lock); run as a test it returns.
#[tokio::test]
async fn lock_child() {
    let Some(role) = locks::role() else { return };
    locks::play(&role, &FileLocks::new(&role.dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_taking_a_file_lock_a_thousand_times_each_never_overlap() {
    let scratch = Scratch::new("file");
    locks::two_processes_never_overlap(&scratch, &FileLocks::new(&scratch.dir), Fences::Counted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_file_lock_is_free_at_once_with_a_larger_fence() {
    let scratch = Scratch::new("file");
    let locks = FileLocks::new(&scratch.dir);
    let err = {
        let _held = locks.try_acquire("shared").await.expect("try").expect("free");
        locks.acquire("shared", Duration::from_millis(100)).await.expect_err("held")
    };
    assert!(matches!(err, LockError::Timeout { .. }), "{err}");
    locks::a_killed_holder_frees_the_lock(&scratch, &locks, None).await;
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
    assert!(matches!(
        FileLocks::new(Scratch::new("file").dir.clone()).try_acquire("../etc").await,
        Err(LockError::InvalidKey(_))
    ));
}

#[tokio::test]
async fn local_fenced_values_refuse_stale_writers() {
    locks::fenced_values_refuse_stale_writers(&LocalLocks::new()).await;
}
