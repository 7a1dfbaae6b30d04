//! Conformance for the coordination a backend offers beside its queues: locks with
//! fenced values (mutex tasks, beat's leader) and unique task keys.

use std::time::Duration;

use artel_core::UniqueKeys;

use crate::{Fixture, skip};

/// Locks on the backend exclude each other and fence, and its fenced values refuse a
/// stale holder's write.
pub async fn locks_exclude_and_fenced_values_refuse_stale_writers(f: &Fixture) {
    let Some(server) = f.backend.locks() else { return skip(f, "it offers no locks") };
    let locks = server.locks(Duration::from_secs(5));
    let key = "conformance-lock";
    let first = locks.try_acquire(key).await.expect("try").expect("free");
    assert!(locks.try_acquire(key).await.expect("try").is_none(), "held");
    let fence = first.fence();
    drop(first);
    let second = locks.acquire(key, Duration::from_secs(5)).await.expect("freed on drop");
    assert!(second.fence() > fence, "{} after {fence}", second.fence());
    crate::locks::fenced_values_refuse_stale_writers(locks.as_ref()).await;
}

/// A unique key names the first task that claimed it: while held, a second claim gets
/// that id; the holder's release frees it (a stranger's does not); a claim lapses.
pub async fn unique_keys_name_the_first_task_until_released_or_lapsed(f: &Fixture) {
    let Some(unique) = f.backend.unique() else { return skip(f, "it offers no unique task keys") };
    claims_name_the_first_task(unique.as_ref()).await;
}

async fn claims_name_the_first_task(unique: &dyn UniqueKeys) {
    let ttl = Duration::from_secs(30);
    assert_eq!(unique.claim_unique("report:7", "first", ttl).await.expect("claim"), "first");
    assert_eq!(unique.claim_unique("report:7", "second", ttl).await.expect("claim"), "first");
    assert_eq!(unique.claim_unique("report:8", "other", ttl).await.expect("claim"), "other", "keys are separate");
    unique.release_unique("report:7", "second").await.expect("a stranger's release");
    assert_eq!(unique.claim_unique("report:7", "third", ttl).await.expect("claim"), "first", "still held");
    unique.release_unique("report:7", "first").await.expect("release");
    assert_eq!(unique.claim_unique("report:7", "third", ttl).await.expect("claim"), "third");
    let short = Duration::from_millis(100);
    assert_eq!(unique.claim_unique("brief", "a", short).await.expect("claim"), "a");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(unique.claim_unique("brief", "b", ttl).await.expect("claim"), "b", "a claim lapses after its ttl");
}
