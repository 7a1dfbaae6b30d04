//! [`RedisCache`]: a cache shared by every process that reaches the server. An entry is
//! a hash (`v` the value, `n` its version) under `{prefix}:cache:{key}`, expiring with
//! its time to live; every write is `lua/cache_write.lua`, unconditional or
//! compare-and-set on the version read. One key per command, so a cluster serves it.

use std::sync::Arc;
use std::time::Duration;

use artel_cache::{CacheError, CacheStore, Entry, Version};
use async_trait::async_trait;
use redis::Script;

use crate::broker::RedisBroker;
use crate::conn::Conn;

/// Cached values on a Redis server, under a key prefix; cheap to clone.
#[derive(Clone)]
pub struct RedisCache {
    conn: Conn,
    prefix: String,
    write: Arc<Script>,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache").field("prefix", &self.prefix).finish()
    }
}

impl RedisCache {
    /// Cached values on `conn`'s server, their keys under `prefix`.
    pub fn new(conn: Conn, prefix: &str) -> Self {
        let write = Arc::new(Script::new(include_str!("../lua/cache_write.lua")));
        Self { conn, prefix: prefix.to_owned(), write }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:cache:{key}", self.prefix)
    }

    async fn write(&self, key: &str, expected: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<u64, CacheError> {
        let ttl_ms = ttl.map_or(0, |ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1));
        self.write
            .key(self.key(key))
            .arg(expected)
            .arg(value)
            .arg(ttl_ms)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }
}

impl RedisBroker {
    /// A cache shared through this broker's server, under its key prefix.
    pub fn cache_store(&self) -> RedisCache {
        RedisCache::new(self.shared.conn.clone(), &self.shared.config.prefix)
    }
}

fn unavailable(e: redis::RedisError) -> CacheError {
    CacheError::Unavailable(e.to_string())
}

#[async_trait]
impl CacheStore for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Entry>, CacheError> {
        let (value, version): (Option<Vec<u8>>, Option<u64>) = redis::cmd("HMGET")
            .arg(self.key(key))
            .arg("v")
            .arg("n")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(value.zip(version).map(|(value, version)| Entry { value, version }))
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version, CacheError> {
        self.write(key, "*", value, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let gone: u64 =
            redis::cmd("DEL").arg(self.key(key)).query_async(&mut self.conn.clone()).await.map_err(unavailable)?;
        Ok(gone > 0)
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, CacheError> {
        let expected = expected.map(|version| version.to_string()).unwrap_or_default();
        let version = self.write(key, &expected, value, ttl).await?;
        Ok((version > 0).then_some(version))
    }

    async fn clear(&self, prefix: &str) -> Result<u64, CacheError> {
        let pattern = format!("{}*", glob_escape(&self.key(prefix)));
        crate::toolkit::delete_matching(&mut self.conn.clone(), &pattern)
            .await
            .map_err(|e| CacheError::Unavailable(e.to_string()))
    }
}

/// `text` matching itself only in a SCAN pattern.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    #[test]
    fn scan_patterns_match_a_prefix_literally() {
        assert_eq!(super::glob_escape(r"a*b?[c]\d"), r"a\*b\?\[c\]\\d");
    }
}
