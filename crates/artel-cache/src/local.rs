//! [`LocalCache`]: this process's cache (cachetools' `TTLCache`/`LRUCache`), on moka:
//! bounded in bytes (least recently used entries go first), each entry with its own time
//! to live, versions from one counter so a compare-and-set sees any write in between.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::Expiry;
use moka::ops::compute::{CompResult, Op};

use crate::{CacheError, CacheStore, Entry, Version};

/// A stored value and how long it lives.
#[derive(Clone)]
struct Stored {
    value: Arc<Vec<u8>>,
    version: Version,
    ttl: Option<Duration>,
}

/// Each entry expires `ttl` after its last write (reads do not extend it).
struct PerEntry;

impl Expiry<String, Stored> for PerEntry {
    fn expire_after_create(&self, _: &String, stored: &Stored, _: Instant) -> Option<Duration> {
        stored.ttl
    }

    fn expire_after_update(&self, _: &String, stored: &Stored, _: Instant, _: Option<Duration>) -> Option<Duration> {
        stored.ttl
    }
}

/// A cache in this process's memory, holding at most a number of bytes of keys and
/// values; cheap to clone (clones share the entries).
#[derive(Clone)]
pub struct LocalCache {
    entries: moka::future::Cache<String, Stored>,
    versions: Arc<AtomicU64>,
}

impl std::fmt::Debug for LocalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCache").field("entries", &self.entries.entry_count()).finish()
    }
}

impl LocalCache {
    /// A cache of at most `max_bytes` of keys and values.
    pub fn new(max_bytes: u64) -> Self {
        let entries = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, stored: &Stored| {
                u32::try_from(key.len().saturating_add(stored.value.len())).unwrap_or(u32::MAX)
            })
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .expire_after(PerEntry)
            .build();
        Self { entries, versions: Arc::new(AtomicU64::new(0)) }
    }

    /// Applies the evictions and expirations moka defers (it does so in the background
    /// too); tests call it to see the bound at once.
    pub async fn settle(&self) {
        self.entries.run_pending_tasks().await;
    }

    fn stored(&self, value: Vec<u8>, ttl: Option<Duration>) -> Stored {
        let version = self.versions.fetch_add(1, Ordering::Relaxed) + 1;
        Stored { value: Arc::new(value), version, ttl }
    }
}

#[async_trait]
impl CacheStore for LocalCache {
    async fn get(&self, key: &str) -> Result<Option<Entry>, CacheError> {
        let stored = self.entries.get(key).await;
        Ok(stored.map(|stored| Entry { value: stored.value.as_ref().clone(), version: stored.version }))
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version, CacheError> {
        let stored = self.stored(value, ttl);
        let version = stored.version;
        self.entries.insert(key.to_owned(), stored).await;
        Ok(version)
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.entries.remove(key).await.is_some())
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, CacheError> {
        let stored = self.stored(value, ttl);
        let version = stored.version;
        // Atomic for the key: no other write lands between the check and the put.
        let outcome = self
            .entries
            .entry(key.to_owned())
            .and_compute_with(|current| {
                let current = current.map(|entry| entry.value().version);
                let op = if current == expected { Op::Put(stored) } else { Op::Nop };
                std::future::ready(op)
            })
            .await;
        Ok(match outcome {
            CompResult::Inserted(_) | CompResult::ReplacedWith(_) => Some(version),
            _ => None,
        })
    }

    async fn clear(&self, prefix: &str) -> Result<u64, CacheError> {
        let keys: Vec<Arc<String>> =
            self.entries.iter().filter(|(key, _)| key.starts_with(prefix)).map(|(key, _)| key).collect();
        let mut removed = 0;
        for key in keys {
            removed += u64::from(self.entries.remove(key.as_str()).await.is_some());
        }
        Ok(removed)
    }
}
