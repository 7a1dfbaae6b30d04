//! What every cache store does, checked through the [`Cache`] API: a value lives until its
//! time to live, concurrent misses compute once, a failed computation is not kept, a
//! compare-and-set loses to a write in between, two writers updating one counter lose
//! no increment, and a value of another type reads as a miss.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use artel_cache::{Cache, CacheStore};

/// The whole suite as tests, for a store crate: `$scratch` is an expression (awaited in
/// each test) giving `Option<(store, guard)>`, `None` to skip (a server is missing), the
/// guard cleaning up when dropped; `$ttl` is the shortest time to live the store keeps.
#[macro_export]
macro_rules! cache_suite {
    ($scratch:expr, ttl = $ttl:expr) => {
        #[tokio::test]
        async fn a_value_lives_until_its_ttl() {
            let Some((store, _guard)) = $scratch else { return };
            $crate::caches::a_value_lives_until_its_ttl(&artel_cache::Cache::new(store), $ttl).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_hundred_concurrent_misses_compute_once() {
            let Some((store, _guard)) = $scratch else { return };
            $crate::caches::a_hundred_concurrent_misses_compute_once(&artel_cache::Cache::new(store)).await;
        }

        #[tokio::test]
        async fn a_failed_computation_is_not_kept_and_the_next_caller_computes() {
            let Some((store, _guard)) = $scratch else { return };
            let cache = artel_cache::Cache::new(store);
            $crate::caches::a_failed_computation_is_not_kept_and_the_next_caller_computes(&cache).await;
        }

        #[tokio::test]
        async fn a_compare_and_set_loses_to_a_write_in_between() {
            let Some((store, _guard)) = $scratch else { return };
            $crate::caches::a_compare_and_set_loses_to_a_write_in_between(&store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn two_writers_updating_one_counter_lose_no_increment() {
            let Some((store, _guard)) = $scratch else { return };
            $crate::caches::two_writers_updating_one_counter_lose_no_increment(&artel_cache::Cache::new(store)).await;
        }

        #[tokio::test]
        async fn a_value_of_another_type_reads_as_a_miss() {
            let Some((store, _guard)) = $scratch else { return };
            $crate::caches::a_value_of_another_type_reads_as_a_miss(&artel_cache::Cache::new(store)).await;
        }

        #[tokio::test]
        async fn clearing_a_prefix_removes_only_its_keys() {
            let Some((store, _guard)) = $scratch else { return };
            $crate::caches::clearing_a_prefix_removes_only_its_keys(&artel_cache::Cache::new(store)).await;
        }
    };
}

/// Every key the suite writes, for a store that cannot list its keys to delete them.
pub const KEYS: [&str; 11] =
    ["short", "long", "report", "flaky", "k", "new", "counter", "typed", "memo.a.1", "memo.a.2", "memo.ab.1"];

/// A value set with a time to live of `ttl` (the store's smallest) reads back until then
/// and not after; one without stays until deleted.
pub async fn a_value_lives_until_its_ttl(cache: &Cache, ttl: Duration) {
    assert!(cache.set("short", &"soon gone", Some(ttl)).await);
    assert!(cache.set("long", &"kept", None).await);
    assert_eq!(cache.get::<String>("short").await.as_deref(), Some("soon gone"));
    tokio::time::sleep(ttl * 2 + ttl / 2).await;
    assert_eq!(cache.get::<String>("short").await, None, "expired");
    assert_eq!(cache.get::<String>("long").await.as_deref(), Some("kept"));
    assert!(cache.delete("long").await);
    assert_eq!(cache.get::<String>("long").await, None);
}

/// 100 callers missing one key at once: one computation serves them all. Run on a
/// multi-threaded runtime.
pub async fn a_hundred_concurrent_misses_compute_once(cache: &Cache) {
    let computed = Arc::new(AtomicUsize::new(0));
    let callers = (0..100).map(|_| {
        let (cache, computed) = (cache.clone(), computed.clone());
        tokio::spawn(async move {
            cache
                .get_or_compute("report", None, || async {
                    computed.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, String>(vec![1, 2, 3])
                })
                .await
        })
    });
    for caller in callers.collect::<Vec<_>>() {
        assert_eq!(caller.await.expect("joined"), Ok(vec![1, 2, 3]));
    }
    assert_eq!(computed.load(Ordering::SeqCst), 1, "one computation served all 100");
}

/// A computation's error reaches its caller and nothing is cached.
pub async fn a_failed_computation_is_not_kept_and_the_next_caller_computes(cache: &Cache) {
    let failed = cache.get_or_compute("flaky", None, || async { Err::<u32, _>("backend down") }).await;
    assert_eq!(failed, Err("backend down"));
    assert_eq!(cache.get_or_compute("flaky", None, || async { Ok::<_, &str>(7) }).await, Ok(7));
}

/// A conditional write names the version it read: refused after another write, or
/// (naming none) where an entry appeared.
pub async fn a_compare_and_set_loses_to_a_write_in_between(store: &dyn CacheStore) {
    let read = store.set("k", b"1".to_vec(), None).await.expect("set");
    let other = store.set("k", b"2".to_vec(), None).await.expect("set");
    assert_ne!(read, other, "every write has a version of its own");
    assert_eq!(store.compare_and_set("k", Some(read), b"3".to_vec(), None).await.expect("cas"), None, "stale");
    assert!(store.compare_and_set("k", Some(other), b"3".to_vec(), None).await.expect("cas").is_some());
    assert_eq!(store.get("k").await.expect("get").map(|entry| entry.value), Some(b"3".to_vec()));
    assert_eq!(store.compare_and_set("new", Some(other), b"1".to_vec(), None).await.expect("cas"), None);
    assert!(store.compare_and_set("new", None, b"1".to_vec(), None).await.expect("cas").is_some(), "absent");
    assert_eq!(store.compare_and_set("new", None, b"2".to_vec(), None).await.expect("cas"), None, "now present");
}

/// Two writers incrementing one counter 200 times each end at 400. Run on a
/// multi-threaded runtime.
pub async fn two_writers_updating_one_counter_lose_no_increment(cache: &Cache) {
    let writers = (0..2).map(|_| {
        let cache = cache.clone();
        tokio::spawn(async move {
            for _ in 0..200 {
                cache.update("counter", None, |n: Option<u64>| n.unwrap_or(0) + 1).await.expect("updated");
                tokio::task::yield_now().await;
            }
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.expect("joined");
    }
    assert_eq!(cache.get::<u64>("counter").await, Some(400));
}

/// A value stored as another type reads as a miss and is recomputed.
pub async fn a_value_of_another_type_reads_as_a_miss(cache: &Cache) {
    cache.set("typed", &"text", None).await;
    assert_eq!(cache.get::<u64>("typed").await, None);
    assert_eq!(cache.get_or_compute("typed", None, || async { Ok::<_, ()>(9_u64) }).await, Ok(9));
    assert_eq!(cache.get::<u64>("typed").await, Some(9), "recomputed and replaced");
}

/// Clearing a prefix removes the keys that start with it and no other (`memo.a.` is not
/// `memo.ab.`); a store that cannot list its keys says so instead.
pub async fn clearing_a_prefix_removes_only_its_keys(cache: &Cache) {
    for key in ["memo.a.1", "memo.a.2", "memo.ab.1"] {
        assert!(cache.set(key, &key, None).await);
    }
    match cache.clear("memo.a.").await {
        Ok(removed) => assert_eq!(removed, 2),
        Err(artel_cache::CacheError::Unsupported(why)) => {
            assert!(why.contains("cannot list"), "{why}");
            return;
        }
        Err(error) => panic!("clear failed: {error}"),
    }
    assert_eq!(cache.get::<String>("memo.a.1").await, None);
    assert_eq!(cache.get::<String>("memo.a.2").await, None);
    assert_eq!(cache.get::<String>("memo.ab.1").await.as_deref(), Some("memo.ab.1"), "another prefix stays");
    assert_eq!(cache.clear("memo.").await.expect("clear"), 1);
}
