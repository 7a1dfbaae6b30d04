//! Caches with one API ([`Cache`]): typed values (any serde type, kept as JSON) with a
//! time to live, [`Cache::get_or_compute`] with single flight (concurrent misses of one
//! key in this process compute it once, the others wait for that value), and
//! [`Cache::update`], a read-modify-write that retries on a version conflict
//! (memcached's `gets`/`cas`), over a [`CacheStore`]: [`LocalCache`] (this process: LRU,
//! bounded in bytes, a TTL per entry) or a store shared by processes (Redis in
//! artel-redis, memcached in artel-memcached).
//!
//! A cache only saves work: when its store fails, [`Cache`] logs a warning and behaves as
//! on a miss (the value is computed, the write is skipped); a caller never fails because
//! of its cache. Only [`Cache::update`], whose point is the write, reports the failure.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! use artel_cache::{Cache, LocalCache};
//!
//! let cache = Cache::new(LocalCache::new(64 << 20));
//! let ten_minutes = Some(Duration::from_secs(600));
//! // Computed on the first call, read from the cache on the next.
//! let first: Vec<u32> = cache.get_or_compute("primes:10", ten_minutes, || async { Ok::<_, String>(vec![2, 3, 5, 7]) }).await?;
//! let again: Vec<u32> = cache.get_or_compute("primes:10", ten_minutes, || async { Err("not called".to_owned()) }).await?;
//! assert_eq!(first, again);
//! // A counter two writers can share without losing an increment.
//! let visits = cache.update("visits", None, |n: Option<u64>| n.unwrap_or(0) + 1).await?;
//! assert_eq!(visits, 1);
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "local")]
mod local;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(feature = "local")]
pub use local::LocalCache;

/// A stored value's version: it changes with every write of its key.
pub type Version = u64;

/// A value as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value's bytes (JSON, written by [`Cache`]).
    pub value: Vec<u8>,
    /// What a [`CacheStore::compare_and_set`] of this key must name.
    pub version: Version,
}

/// Why a cache operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The store could not be reached or answered with an error.
    #[error("cache store unavailable: {0}")]
    Unavailable(String),
    /// The value could not be written as JSON, or read back as the asked type.
    #[error("cache value for {key:?} cannot be (de)serialised: {source}")]
    Value {
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The store cannot do what was asked (memcached cannot list its keys).
    #[error("{0}")]
    Unsupported(String),
    /// [`Cache::update`] lost the race for a key every time it tried.
    #[error("cache key {key:?} changed under every one of {attempts} attempts to update it")]
    Contended {
        /// The key.
        key: String,
        /// How many times it tried.
        attempts: u32,
    },
}

/// Where a [`Cache`] keeps its entries: a key's entry carries a version so that a write
/// can be made conditional on nobody having written since it was read.
#[async_trait]
pub trait CacheStore: Send + Sync + std::fmt::Debug + 'static {
    /// The live entry of `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Entry>, CacheError>;
    /// Writes `value` for `key` (expiring after `ttl`, if given); its new version.
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version, CacheError>;
    /// Removes `key`; whether it was there.
    async fn delete(&self, key: &str) -> Result<bool, CacheError>;
    /// Writes `value` only if `key`'s version is still `expected` (`None`: only if it has
    /// no entry); the new version, or `None` when someone wrote in between.
    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, CacheError>;
    /// Removes every key that starts with `prefix`; how many went.
    async fn clear(&self, prefix: &str) -> Result<u64, CacheError>;
}

/// How many times [`Cache::update`] reads and tries again (after a random pause that
/// grows with each try) before giving up.
const UPDATE_ATTEMPTS: u32 = 32;

/// A typed cache over a [`CacheStore`]; cheap to clone (clones share the store and the
/// single-flight table).
#[derive(Clone)]
pub struct Cache {
    store: Arc<dyn CacheStore>,
    /// One gate per key being computed: callers that miss it take turns, so the first
    /// computes and the others find its value in the store.
    gates: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache over `store`.
    pub fn new(store: impl CacheStore) -> Self {
        Self::shared(Arc::new(store))
    }

    /// A cache over a store already shared (a backend's).
    pub fn shared(store: Arc<dyn CacheStore>) -> Self {
        Self { store, gates: Arc::default() }
    }

    /// The value of `key`; `None` on a miss, and when the store failed or holds a value
    /// of another type (both logged).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let entry = match self.store.get(key).await {
            Ok(entry) => entry?,
            Err(error) => {
                tracing::warn!(key, %error, "cache read failed; treated as a miss");
                return None;
            }
        };
        decode(key, &entry.value)
    }

    /// Writes `value` for `key`, expiring after `ttl`; false (logged) when it could not.
    pub async fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T, ttl: Option<Duration>) -> bool {
        let bytes = match encode(key, value) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(key, %error, "not cached");
                return false;
            }
        };
        self.write(key, bytes, ttl).await
    }

    /// Removes `key`; false when it was not there or the store failed (logged).
    pub async fn delete(&self, key: &str) -> bool {
        self.store.delete(key).await.unwrap_or_else(|error| {
            tracing::warn!(key, %error, "cache delete failed");
            false
        })
    }

    /// Removes every key starting with `prefix`: how many went, or why it could not.
    pub async fn clear(&self, prefix: &str) -> Result<u64, CacheError> {
        self.store.clear(prefix).await
    }

    /// The cached value of `key`, or `compute`'s, which is then cached for `ttl`. Of the
    /// callers that miss `key` at the same time in this process, one computes and the
    /// others read its value from the store; after an error, or where the store keeps
    /// nothing (it failed), the next waiter computes.
    pub async fn get_or_compute<T, E, F, Fut>(&self, key: &str, ttl: Option<Duration>, compute: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(value) = self.get(key).await {
            return Ok(value);
        }
        let gate = self.gate(key);
        let turn = gate.lock().await;
        // A caller ahead of this one may have computed it while this one waited.
        let cached = self.get(key).await;
        let outcome = match cached {
            Some(value) => Ok(value),
            None => match compute().await {
                Ok(value) => {
                    self.set(key, &value, ttl).await;
                    Ok(value)
                }
                Err(error) => Err(error),
            },
        };
        drop(turn);
        self.land(key, gate);
        outcome
    }

    /// Reads `key`, applies `change` to its value (`None` when absent) and writes the
    /// result only if nobody wrote `key` in between, reading again and again until it
    /// does; the value written.
    pub async fn update<T, F>(&self, key: &str, ttl: Option<Duration>, mut change: F) -> Result<T, CacheError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        for attempt in 0..UPDATE_ATTEMPTS {
            if attempt > 0 {
                // Writers that lost in lockstep would lose again: a random pause breaks it.
                let most = 100 * u64::from(attempt.min(50));
                tokio::time::sleep(Duration::from_micros(fastrand::u64(0..=most))).await;
            }
            let entry = self.store.get(key).await?;
            let (current, version) = match entry {
                Some(entry) => (
                    Some(serde_json::from_slice(&entry.value).map_err(|source| value_error(key, source))?),
                    Some(entry.version),
                ),
                None => (None, None),
            };
            let next = change(current);
            let bytes = encode(key, &next)?;
            if self.store.compare_and_set(key, version, bytes, ttl).await?.is_some() {
                return Ok(next);
            }
        }
        Err(CacheError::Contended { key: key.to_owned(), attempts: UPDATE_ATTEMPTS })
    }

    async fn write(&self, key: &str, bytes: Vec<u8>, ttl: Option<Duration>) -> bool {
        match self.store.set(key, bytes, ttl).await {
            Ok(_) => true,
            Err(error) => {
                tracing::warn!(key, %error, "cache write failed; the value is not cached");
                false
            }
        }
    }

    fn gate(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        gates.entry(key.to_owned()).or_default().clone()
    }

    /// Forgets `key`'s gate when no other caller holds or waits on it.
    fn land(&self, key: &str, gate: Arc<tokio::sync::Mutex<()>>) {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        // Held by the table and by `gate` only: nobody else is waiting.
        if Arc::strong_count(&gate) == 2 && gates.get(key).is_some_and(|g| Arc::ptr_eq(g, &gate)) {
            gates.remove(key);
        }
    }
}

fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, CacheError> {
    serde_json::to_vec(value).map_err(|source| value_error(key, source))
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes)
        .inspect_err(|error| tracing::warn!(key, %error, "cached value is not of the asked type; treated as a miss"))
        .ok()
}

fn value_error(key: &str, source: serde_json::Error) -> CacheError {
    CacheError::Value { key: key.to_owned(), source }
}
