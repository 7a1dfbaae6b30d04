//! [`RedisLocks`]: locks on a Redis server, for processes on any machine.
//!
//! A lock is a key holding its holder's random token with a lease (`lua/lock_*.lua`):
//! taking it sets the key only if absent and hands out the next fencing token from a
//! counter kept beside it; renewing and releasing check the token first, so a holder
//! never extends or frees a lock someone else has since taken. While a guard lives, its
//! lease is renewed a few times per lease; when a renewal finds the lease gone, the guard
//! reports it ([`artel_lock::Guard::check`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use artel_lock::{Guard, LockError, Locks, check_key};
use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use crate::broker::RedisBroker;

/// Lock scripts, loaded once.
struct LockScripts {
    acquire: Script,
    renew: Script,
    release: Script,
}

/// Locks on a Redis server; cheap to clone.
#[derive(Clone)]
pub struct RedisLocks {
    conn: ConnectionManager,
    prefix: String,
    lease: Duration,
    scripts: Arc<LockScripts>,
}

impl std::fmt::Debug for RedisLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLocks").field("prefix", &self.prefix).field("lease", &self.lease).finish()
    }
}

impl RedisBroker {
    /// Locks on this broker's server, under its key prefix, each held with a lease of
    /// `lease` that its guard renews (a holder that dies frees it within `lease`).
    pub fn locks(&self, lease: Duration) -> RedisLocks {
        let scripts = LockScripts {
            acquire: Script::new(include_str!("../lua/lock_acquire.lua")),
            renew: Script::new(include_str!("../lua/lock_renew.lua")),
            release: Script::new(include_str!("../lua/lock_release.lua")),
        };
        RedisLocks {
            conn: self.shared.conn.clone(),
            prefix: self.shared.config.prefix.clone(),
            lease: lease.max(Duration::from_millis(30)),
            scripts: Arc::new(scripts),
        }
    }
}

fn lease_ms(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX)
}

/// Renews a held lock until dropped, then releases it.
struct Held {
    renewing: tokio::task::JoinHandle<()>,
    locks: RedisLocks,
    key: String,
    token: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewing.abort();
        let (locks, key, token) = (self.locks.clone(), self.key.clone(), self.token.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut conn = locks.conn.clone();
                let freed: Result<i64, _> = locks.scripts.release.key(&key).arg(&token).invoke_async(&mut conn).await;
                if let Err(error) = freed {
                    tracing::warn!(%key, %error, "could not release a lock; it frees itself when its lease lapses");
                }
            });
        }
    }
}

#[async_trait]
impl Locks for RedisLocks {
    async fn try_acquire(&self, key: &str) -> Result<Option<Guard>, LockError> {
        check_key(key)?;
        let io = |e: redis::RedisError| LockError::Io { key: key.to_owned(), source: std::io::Error::other(e) };
        let lock = format!("{}:lock:{key}", self.prefix);
        let token = format!("{:x}", fastrand::u128(..));
        let mut conn = self.conn.clone();
        let fence: u64 = self
            .scripts
            .acquire
            .key(&lock)
            .key(format!("{lock}:fence"))
            .arg(&token)
            .arg(lease_ms(self.lease))
            .invoke_async(&mut conn)
            .await
            .map_err(io)?;
        if fence == 0 {
            return Ok(None);
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewing = tokio::spawn(renew(self.clone(), lock.clone(), token.clone(), lost.clone()));
        let held = Held { renewing, locks: self.clone(), key: lock, token };
        Ok(Some(Guard::new(key, fence, held).with_lease(lost)))
    }
}

/// Extends the lease a few times per lease until the guard drops or the lease is lost.
async fn renew(locks: RedisLocks, lock: String, token: String, lost: Arc<AtomicBool>) {
    let every = locks.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let mut conn = locks.conn.clone();
        let renewed: Result<i64, _> =
            locks.scripts.renew.key(&lock).arg(&token).arg(lease_ms(locks.lease)).invoke_async(&mut conn).await;
        match renewed {
            Ok(1) => {}
            Ok(_) => {
                tracing::error!(%lock, "lost a lock: its lease lapsed while held");
                lost.store(true, Ordering::Release);
                return;
            }
            Err(error) => tracing::warn!(%lock, %error, "could not renew a lock's lease; trying again"),
        }
    }
}
