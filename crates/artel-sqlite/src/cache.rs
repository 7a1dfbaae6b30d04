//! [`SqliteCache`]: a cache every process using the database file shares (memoized task
//! results), one row per key (`queries/cache`). A version is above the key's last one and
//! the clock in microseconds, so a key written again after it expired never repeats a
//! version a reader may still hold. Expired rows read as absent and are deleted every so
//! often as values are written.

use std::sync::Arc;
use std::time::Duration;

use artel_cache::{CacheError, CacheStore, Entry, Version};
use artel_core::BrokerError;
use async_trait::async_trait;

use crate::SqliteBroker;
use crate::queries::{self, CacheWrite};
use crate::shared::Shared;

/// One write in this many also deletes the expired rows.
const PURGE_EVERY: u32 = 64;

/// Cached values in a broker's database file; cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteCache {
    shared: Arc<Shared>,
}

impl SqliteBroker {
    /// A cache in this broker's database, shared by every process that opens it.
    pub fn cache_store(&self) -> SqliteCache {
        SqliteCache { shared: self.shared.clone() }
    }
}

fn unavailable(e: BrokerError) -> CacheError {
    CacheError::Unavailable(e.to_string())
}

impl SqliteCache {
    async fn write(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        expected: Option<Version>,
        only_new: bool,
    ) -> Result<Option<Version>, CacheError> {
        let (key, now, now_us) = (key.to_owned(), self.shared.now_ms(), self.shared.now_us());
        let expires_at = ttl.map(|ttl| now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)));
        let purge = fastrand::u32(..PURGE_EVERY) == 0;
        self.shared
            .db
            .call("write a cached value", move |tx| {
                if purge {
                    queries::cache_purge(tx, now)?;
                }
                let write = CacheWrite { key: &key, value: &value, expires_at, now_us, now };
                queries::cache_write(tx, &write, expected, only_new)
            })
            .await
            .map_err(unavailable)
    }

    async fn delete_where(&self, key: &str, prefix: bool) -> Result<u64, CacheError> {
        let (key, now) = (key.to_owned(), self.shared.now_ms());
        self.shared
            .db
            .call("delete cached values", move |tx| queries::cache_delete(tx, &key, prefix, now))
            .await
            .map_err(unavailable)
    }
}

#[async_trait]
impl CacheStore for SqliteCache {
    async fn get(&self, key: &str) -> Result<Option<Entry>, CacheError> {
        let (key, now) = (key.to_owned(), self.shared.now_ms());
        let found = self.shared.db.call("read a cached value", move |tx| queries::cache_get(tx, &key, now)).await;
        Ok(found.map_err(unavailable)?.map(|(value, version)| Entry { value, version }))
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version, CacheError> {
        let version = self.write(key, value, ttl, None, false).await?;
        // An unconditional write always returns its row.
        version.ok_or_else(|| CacheError::Unavailable(format!("writing {key:?} returned no version")))
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.delete_where(key, false).await? > 0)
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, CacheError> {
        self.write(key, value, ttl, expected, expected.is_none()).await
    }

    async fn clear(&self, prefix: &str) -> Result<u64, CacheError> {
        self.delete_where(prefix, true).await
    }
}
