//! [`PostgresCache`]: a cache every process using the schema shares (memoized task
//! results), one row per key (`queries/cache`). A version is above the key's last one and
//! the clock in microseconds, so a key written again after it expired never repeats a
//! version a reader may still hold. Expired rows read as absent and are deleted every so
//! often as values are written.

use std::sync::Arc;
use std::time::Duration;

use artel_cache::{CacheError, CacheStore, Entry, Version};
use async_trait::async_trait;

use crate::broker::PostgresBroker;
use crate::shared::{Shared, pg_error};

/// One write in this many also deletes the expired rows.
const PURGE_EVERY: u32 = 64;

/// Cached values in a broker's schema; cheap to clone.
#[derive(Debug, Clone)]
pub struct PostgresCache {
    shared: Arc<Shared>,
}

impl PostgresBroker {
    /// A cache in this broker's schema, shared by every process that uses it.
    pub fn cache_store(&self) -> PostgresCache {
        PostgresCache { shared: self.shared.clone() }
    }
}

fn unavailable(what: &str, e: sqlx::Error) -> CacheError {
    CacheError::Unavailable(pg_error(what, e).to_string())
}

fn version(row: Option<i64>) -> Option<Version> {
    row.map(|version| u64::try_from(version).unwrap_or(0))
}

impl PostgresCache {
    /// The clock in µs (a new version's floor), when a value written now expires, and
    /// now (unix ms).
    fn times(&self, ttl: Option<Duration>) -> (i64, Option<i64>, i64) {
        let now = self.shared.now_ms();
        let expires_at = ttl.map(|ttl| now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)));
        (self.shared.now_us(), expires_at, now)
    }

    async fn purge_now_and_then(&self, now: i64) {
        if fastrand::u32(..PURGE_EVERY) != 0 {
            return;
        }
        let purged = sqlx::query(include_str!("../queries/cache/purge.sql")).bind(now).execute(&self.shared.pool).await;
        if let Err(error) = purged {
            tracing::warn!(error = %pg_error("deleting expired cached values", error), "expired values stay until the next try");
        }
    }

    async fn delete_where(&self, sql: &'static str, key: &str) -> Result<u64, CacheError> {
        let live: Vec<bool> = sqlx::query_scalar(sql)
            .bind(key)
            .bind(self.shared.now_ms())
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|e| unavailable("deleting cached values", e))?;
        Ok(live.into_iter().map(u64::from).sum())
    }
}

#[async_trait]
impl CacheStore for PostgresCache {
    async fn get(&self, key: &str) -> Result<Option<Entry>, CacheError> {
        let row: Option<(Vec<u8>, i64)> = sqlx::query_as(include_str!("../queries/cache/get.sql"))
            .bind(key)
            .bind(self.shared.now_ms())
            .fetch_optional(&self.shared.pool)
            .await
            .map_err(|e| unavailable("reading a cached value", e))?;
        Ok(row.map(|(value, version)| Entry { value, version: u64::try_from(version).unwrap_or(0) }))
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version, CacheError> {
        let (now_us, expires_at, now) = self.times(ttl);
        self.purge_now_and_then(now).await;
        let written: i64 = sqlx::query_scalar(include_str!("../queries/cache/set.sql"))
            .bind(key)
            .bind(value)
            .bind(expires_at)
            .bind(now_us)
            .fetch_one(&self.shared.pool)
            .await
            .map_err(|e| unavailable("writing a cached value", e))?;
        Ok(u64::try_from(written).unwrap_or(0))
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        Ok(self.delete_where(include_str!("../queries/cache/delete.sql"), key).await? > 0)
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, CacheError> {
        let (now_us, expires_at, now) = self.times(ttl);
        let query = match expected {
            Some(expected) => sqlx::query_scalar(include_str!("../queries/cache/replace.sql"))
                .bind(key)
                .bind(value)
                .bind(expires_at)
                .bind(now_us)
                .bind(now)
                .bind(i64::try_from(expected).unwrap_or(-1)),
            None => sqlx::query_scalar(include_str!("../queries/cache/add.sql"))
                .bind(key)
                .bind(value)
                .bind(expires_at)
                .bind(now_us)
                .bind(now),
        };
        let written: Option<i64> =
            query.fetch_optional(&self.shared.pool).await.map_err(|e| unavailable("writing a cached value", e))?;
        Ok(version(written))
    }

    async fn clear(&self, prefix: &str) -> Result<u64, CacheError> {
        self.delete_where(include_str!("../queries/cache/clear.sql"), prefix).await
    }
}
