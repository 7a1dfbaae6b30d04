//! [`RedisLocks`]: locks, fenced values, unique task keys and shared rate limits on a
//! Redis server, for processes on any machine.
//!
//! A lock is a key holding its holder's random token with a lease (`lua/lock_*.lua`):
//! taking it sets the key only if absent and hands out the next fencing token from a
//! counter kept beside it; renewing and releasing check the token first, so a holder
//! never extends or frees a lock someone else has since taken. [`artel_lock::Leased`]
//! renews while a guard lives and reports a lost lease. A rate limit is a hash that
//! `lua/rate_admit.lua` reads and writes in one step, on the server's clock.

use std::sync::Arc;
use std::time::Duration;

use artel_core::{Admission, BrokerResult, RateLimits, UniqueKeys};
use artel_lock::{Fenced, LeaseLocks, Leased, LockError};
use async_trait::async_trait;
use redis::Script;

use crate::broker::RedisBroker;
use crate::conn::Conn;
use crate::toolkit::redis_error;

/// Lock scripts, loaded once.
struct LockScripts {
    acquire: Script,
    renew: Script,
    release: Script,
    advance: Script,
    claim_unique: Script,
    rate_admit: Script,
}

/// Locks, fenced values and unique task keys on a Redis server, under a key prefix;
/// cheap to clone.
#[derive(Clone)]
pub struct RedisLocks {
    conn: Conn,
    prefix: String,
    scripts: Arc<LockScripts>,
}

impl std::fmt::Debug for RedisLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLocks").field("prefix", &self.prefix).finish()
    }
}

impl RedisLocks {
    /// Locks on `conn`'s server, their keys under `prefix`.
    pub fn new(conn: Conn, prefix: &str) -> Self {
        let scripts = LockScripts {
            acquire: Script::new(include_str!("../lua/lock_acquire.lua")),
            renew: Script::new(include_str!("../lua/lock_renew.lua")),
            release: Script::new(include_str!("../lua/lock_release.lua")),
            advance: Script::new(include_str!("../lua/fenced_advance.lua")),
            claim_unique: Script::new(include_str!("../lua/unique_claim.lua")),
            rate_admit: Script::new(include_str!("../lua/rate_admit.lua")),
        };
        Self { conn, prefix: prefix.to_owned(), scripts: Arc::new(scripts) }
    }

    /// The lock's key; its fence counter is this plus `:fence`. On a cluster the key is
    /// a hash tag, so both share a slot (one server keeps the older names, so fences
    /// already handed out keep counting up).
    fn lock_key(&self, key: &str) -> String {
        match self.conn.is_cluster() {
            true => format!("{}:lock:{{{key}}}", self.prefix),
            false => format!("{}:lock:{key}", self.prefix),
        }
    }

    fn unique_key(&self, key: &str) -> String {
        format!("{}:unique:{key}", self.prefix)
    }
}

impl RedisBroker {
    /// Locks on this broker's server, under its key prefix, each held with a lease of
    /// `lease` that its guard renews (a holder that dies frees it within `lease`).
    pub fn locks(&self, lease: Duration) -> Leased<RedisLocks> {
        Leased::new(self.lock_server(), lease)
    }

    /// This server's locks with any lease ([`artel_lock::LockServer`]) and unique keys.
    pub fn lock_server(&self) -> RedisLocks {
        RedisLocks::new(self.shared.conn.clone(), &self.shared.config.prefix)
    }
}

fn lease_ms(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX)
}

fn io(e: redis::RedisError) -> std::io::Error {
    std::io::Error::other(e)
}

#[async_trait]
impl LeaseLocks for RedisLocks {
    async fn take(&self, key: &str, lease: Duration) -> std::io::Result<Option<(String, u64)>> {
        let lock = self.lock_key(key);
        let token = artel_lock::token();
        let fence: u64 = self
            .scripts
            .acquire
            .key(&lock)
            .key(format!("{lock}:fence"))
            .arg(&token)
            .arg(lease_ms(lease))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(io)?;
        Ok((fence > 0).then_some((token, fence)))
    }

    async fn renew(&self, key: &str, token: &str, lease: Duration) -> std::io::Result<bool> {
        let renewed: i64 = self
            .scripts
            .renew
            .key(self.lock_key(key))
            .arg(token)
            .arg(lease_ms(lease))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(io)?;
        Ok(renewed == 1)
    }

    async fn release(&self, key: &str, token: &str) -> std::io::Result<()> {
        let _freed: i64 = self
            .scripts
            .release
            .key(self.lock_key(key))
            .arg(token)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(io)?;
        Ok(())
    }
}

#[async_trait]
impl Fenced for RedisLocks {
    async fn advance(&self, key: &str, fence: u64, value: i64) -> Result<bool, LockError> {
        artel_lock::check_key(key)?;
        let stored: i64 = self
            .scripts
            .advance
            .key(format!("{}:fenced:{key}", self.prefix))
            .arg(fence)
            .arg(value)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| LockError::Io { key: key.to_owned(), source: io(e) })?;
        Ok(stored == 1)
    }

    async fn read(&self, key: &str) -> Result<Option<i64>, LockError> {
        artel_lock::check_key(key)?;
        redis::cmd("HGET")
            .arg(format!("{}:fenced:{key}", self.prefix))
            .arg("value")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|e| LockError::Io { key: key.to_owned(), source: io(e) })
    }
}

#[async_trait]
impl UniqueKeys for RedisLocks {
    async fn claim_unique(&self, key: &str, task_id: &str, ttl: Duration) -> BrokerResult<String> {
        self.scripts
            .claim_unique
            .key(self.unique_key(key))
            .arg(task_id)
            .arg(lease_ms(ttl).max(1))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| redis_error("claiming a unique task key", e))
    }

    async fn release_unique(&self, key: &str, task_id: &str) -> BrokerResult<()> {
        let _freed: i64 = self
            .scripts
            .release
            .key(self.unique_key(key))
            .arg(task_id)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| redis_error("releasing a unique task key", e))?;
        Ok(())
    }
}

#[async_trait]
impl RateLimits for RedisLocks {
    async fn admit(&self, key: &str, interval: Duration, book: bool) -> BrokerResult<Admission> {
        let wait_us: u64 = self
            .scripts
            .rate_admit
            .key(format!("{}:rate:{key}", self.prefix))
            .arg(u64::try_from(interval.as_micros()).unwrap_or(u64::MAX))
            .arg(if book { "1" } else { "0" })
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| redis_error("admitting a rate-limited run", e))?;
        Ok(match wait_us {
            0 => Admission::Now,
            wait => Admission::After(Duration::from_micros(wait)),
        })
    }
}
