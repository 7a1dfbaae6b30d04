//! [`SqliteLocks`]: locks, fenced values, unique task keys and shared rate limits in the
//! database file, for the processes sharing it.
//!
//! A lock is a row holding its holder's token and when its lease lapses; taking it
//! succeeds only when the row is free or lapsed, and hands out the next fence kept in the
//! row. [`artel_lock::Leased`] renews it while a guard lives. A rate limit is a row read
//! and written in one transaction ([`artel_core::rates::admit`]). Times come from the
//! broker's clock, so every process on the file must share one machine's clock.

use std::sync::Arc;
use std::time::Duration;

use artel_core::{Admission, BrokerError, BrokerResult, RateLimits, UniqueKeys};
use artel_lock::{Fenced, LeaseLocks, Leased, LockError};
use async_trait::async_trait;

use crate::broker::SqliteBroker;
use crate::queries;
use crate::shared::Shared;

/// Locks and fenced values in a broker's database file; cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteLocks {
    shared: Arc<Shared>,
}

impl SqliteBroker {
    /// Locks in this broker's file, each held with `lease` that its guard renews (a
    /// holder that dies frees it within `lease`).
    pub fn locks(&self, lease: Duration) -> Leased<SqliteLocks> {
        Leased::new(self.lock_server(), lease)
    }

    /// This file's locks with any lease ([`artel_lock::LockServer`]).
    pub fn lock_server(&self) -> SqliteLocks {
        SqliteLocks { shared: self.shared.clone() }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn io(e: BrokerError) -> std::io::Error {
    std::io::Error::other(e)
}

#[async_trait]
impl LeaseLocks for SqliteLocks {
    async fn take(&self, key: &str, lease: Duration) -> std::io::Result<Option<(String, u64)>> {
        let (key, token, now) = (key.to_owned(), artel_lock::token(), self.shared.now_ms());
        let taken = {
            let token = token.clone();
            self.shared
                .db
                .call("take a lock", move |tx| {
                    queries::lock_take(tx, &key, &token, now, now.saturating_add(millis(lease)))
                })
                .await
                .map_err(io)?
        };
        Ok(taken.map(|fence| (token, fence)))
    }

    async fn renew(&self, key: &str, token: &str, lease: Duration) -> std::io::Result<bool> {
        let (key, token, now) = (key.to_owned(), token.to_owned(), self.shared.now_ms());
        self.shared
            .db
            .call("renew a lock", move |tx| {
                queries::lock_renew(tx, &key, &token, now, now.saturating_add(millis(lease)))
            })
            .await
            .map_err(io)
    }

    async fn release(&self, key: &str, token: &str) -> std::io::Result<()> {
        let (key, token) = (key.to_owned(), token.to_owned());
        self.shared.db.call("release a lock", move |tx| queries::lock_release(tx, &key, &token)).await.map_err(io)
    }
}

#[async_trait]
impl Fenced for SqliteLocks {
    async fn advance(&self, key: &str, fence: u64, value: i64) -> Result<bool, LockError> {
        let owned = key.to_owned();
        self.shared
            .db
            .call("advance a fenced value", move |tx| queries::fenced_advance(tx, &owned, fence, value))
            .await
            .map_err(|e| LockError::Io { key: key.to_owned(), source: io(e) })
    }

    async fn read(&self, key: &str) -> Result<Option<i64>, LockError> {
        let owned = key.to_owned();
        self.shared
            .db
            .call("read a fenced value", move |tx| queries::fenced_read(tx, &owned))
            .await
            .map_err(|e| LockError::Io { key: key.to_owned(), source: io(e) })
    }
}

#[async_trait]
impl UniqueKeys for SqliteLocks {
    async fn claim_unique(&self, key: &str, task_id: &str, ttl: Duration) -> BrokerResult<String> {
        let (key, task_id, now) = (key.to_owned(), task_id.to_owned(), self.shared.now_ms());
        let expires_at = now.saturating_add(millis(ttl));
        self.shared
            .db
            .call("claim a unique key", move |tx| queries::unique_claim(tx, &key, &task_id, now, expires_at))
            .await
    }

    async fn release_unique(&self, key: &str, task_id: &str) -> BrokerResult<()> {
        let (key, task_id) = (key.to_owned(), task_id.to_owned());
        self.shared.db.call("release a unique key", move |tx| queries::unique_release(tx, &key, &task_id)).await
    }
}

/// One admission in this many also deletes the idle rate limits.
const PURGE_EVERY: u32 = 64;

#[async_trait]
impl RateLimits for SqliteLocks {
    async fn admit(&self, key: &str, interval: Duration, book: bool) -> BrokerResult<Admission> {
        let (key, clock) = (key.to_owned(), self.shared.clock.clone());
        let purge = fastrand::u32(..PURGE_EVERY) == 0;
        self.shared
            .db
            .call("admit a rate-limited run", move |tx| {
                // Read in the transaction: a time read while queued for it would be stale.
                let now = clock.now().timestamp_micros();
                if purge {
                    queries::rate_purge(tx, now)?;
                }
                let (state, admission) = artel_core::rates::admit(queries::rate_read(tx, &key)?, now, interval, book);
                queries::rate_write(tx, &key, state)?;
                Ok(admission)
            })
            .await
    }
}
