//! The cache API over this process's store: what every store does (artel-broker-tests'
//! cache suite), the byte bound (least recently used first), and a failing store
//! degrading to computing.

use std::time::Duration;

use artel_cache::{Cache, CacheError, CacheStore, Entry, LocalCache, Version};
use async_trait::async_trait;

artel_broker_tests::cache_suite!(Some((LocalCache::new(1 << 20), ())), ttl = Duration::from_millis(200));

#[tokio::test]
async fn past_its_bound_the_least_recently_used_value_goes_first() {
    let store = LocalCache::new(1_000);
    let cache = Cache::new(store.clone());
    let value = "x".repeat(400);
    cache.set("a", &value, None).await;
    cache.set("b", &value, None).await;
    store.settle().await;
    assert!(cache.get::<String>("a").await.is_some(), "a is read: b is now the least recently used");
    cache.set("c", &value, None).await;
    store.settle().await;
    let kept = [cache.get::<String>("a").await.is_some(), cache.get::<String>("b").await.is_some()];
    assert_eq!(kept, [true, false], "b went to make room for c");
    assert!(cache.get::<String>("c").await.is_some());
}

/// A store whose server is gone.
#[derive(Debug)]
struct Down;

fn refused<T>() -> Result<T, CacheError> {
    Err(CacheError::Unavailable("connection refused".into()))
}

#[async_trait]
impl CacheStore for Down {
    async fn get(&self, _: &str) -> Result<Option<Entry>, CacheError> {
        refused()
    }
    async fn set(&self, _: &str, _: Vec<u8>, _: Option<Duration>) -> Result<Version, CacheError> {
        refused()
    }
    async fn delete(&self, _: &str) -> Result<bool, CacheError> {
        refused()
    }
    async fn compare_and_set(
        &self,
        _: &str,
        _: Option<Version>,
        _: Vec<u8>,
        _: Option<Duration>,
    ) -> Result<Option<Version>, CacheError> {
        refused()
    }
    async fn clear(&self, _: &str) -> Result<u64, CacheError> {
        refused()
    }
}

#[tokio::test]
async fn a_failing_store_degrades_to_computing_and_never_fails_the_caller() {
    let cache = Cache::new(Down);
    assert_eq!(cache.get_or_compute("k", None, || async { Ok::<_, ()>(5) }).await, Ok(5));
    assert_eq!(cache.get::<u32>("k").await, None);
    assert!(!cache.set("k", &1, None).await);
    assert!(!cache.delete("k").await);
    let update = cache.update("k", None, |n: Option<u32>| n.unwrap_or(0) + 1).await;
    assert!(matches!(update, Err(CacheError::Unavailable(_))), "an update reports it: {update:?}");
    assert!(matches!(cache.clear("k").await, Err(CacheError::Unavailable(_))), "so does a clear");
}
