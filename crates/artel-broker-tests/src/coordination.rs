//! Conformance for the coordination a backend offers beside its queues: locks with
//! fenced values (mutex tasks, beat's leader), unique task keys, shared rate limits and
//! the shared cache (memoized tasks).

use std::time::Duration;

use artel_core::{Admission, UniqueKeys};

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

/// A shared rate limit admits one run per interval however many ask at once; a refusal
/// says how long to wait, booking consecutive slots when asked to; keys are separate.
pub async fn rate_limits_admit_one_run_per_interval_and_book_slots(f: &Fixture) {
    let Some(rates) = f.backend.rate_limits() else { return skip(f, "it offers no shared rate limits") };
    let every = Duration::from_millis(300);
    let asks = (0..20).map(|_| {
        let rates = rates.clone();
        tokio::spawn(async move { rates.admit("conformance-rate", every, false).await.expect("admit") })
    });
    let mut admitted = 0;
    for ask in asks.collect::<Vec<_>>() {
        match ask.await.expect("joined") {
            Admission::Now => admitted += 1,
            Admission::After(wait) => assert!(wait > Duration::ZERO && wait <= every, "{wait:?}"),
        }
    }
    assert_eq!(admitted, 1, "one of 20 concurrent runs starts");
    let mut slots = Vec::new();
    for _ in 0..3 {
        match rates.admit("conformance-rate", every, true).await.expect("admit") {
            Admission::After(wait) => slots.push(wait),
            Admission::Now => panic!("admitted inside the interval"),
        }
    }
    for pair in slots.windows(2) {
        let gap = pair[1].saturating_sub(pair[0]);
        // The two asks are apart by a round trip: allow for it.
        assert!(gap > every - Duration::from_millis(100) && gap <= every, "slots one interval apart: {slots:?}");
    }
    let other = rates.admit("conformance-rate-other", every, false).await.expect("admit");
    assert_eq!(other, Admission::Now, "another key has its own limit");
    tokio::time::sleep(slots[0]).await;
    assert_eq!(rates.admit("conformance-rate", every, true).await.expect("admit"), Admission::Now, "on its slot");
}

/// The shared cache keeps a value for every client of the backend and clears by prefix.
pub async fn the_shared_cache_keeps_values_and_clears_by_prefix(f: &Fixture) {
    let Some(store) = f.backend.cache() else { return skip(f, "it offers no shared cache") };
    let cache = artel_cache::Cache::shared(store.clone());
    assert!(cache.set("memo.conformance.1", &vec![1, 2], Some(Duration::from_secs(60))).await);
    assert!(cache.set("memo.other.1", &"kept", None).await);
    assert_eq!(cache.get::<Vec<u8>>("memo.conformance.1").await, Some(vec![1, 2]));
    assert_eq!(cache.clear("memo.conformance.").await.expect("clear"), 1);
    assert_eq!(cache.get::<Vec<u8>>("memo.conformance.1").await, None);
    assert_eq!(cache.get::<String>("memo.other.1").await.as_deref(), Some("kept"));
    assert!(cache.delete("memo.other.1").await);
}
