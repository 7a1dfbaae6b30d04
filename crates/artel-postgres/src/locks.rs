//! [`PostgresLocks`]: locks, fenced values, unique task keys and shared rate limits in
//! the database, for every process using it.
//!
//! A lock is a row holding its holder's token and when its lease lapses; taking it
//! succeeds only when the row is free or lapsed, and hands out the next fence kept in the
//! row. [`artel_lock::Leased`] renews it while a guard lives. A rate limit is a row read
//! (locked) and written in one transaction ([`artel_core::rates::admit`]). Times come from the
//! broker's clock, so the processes sharing a lock must agree on the time.

use std::sync::Arc;
use std::time::Duration;

use artel_core::{Admission, BrokerResult, RateLimits, UniqueKeys};
use artel_lock::{Fenced, LeaseLocks, Leased, LockError};
use async_trait::async_trait;

use crate::broker::PostgresBroker;
use crate::shared::{Shared, pg_error};

/// Locks and fenced values in a broker's database; cheap to clone.
#[derive(Debug, Clone)]
pub struct PostgresLocks {
    shared: Arc<Shared>,
}

impl PostgresBroker {
    /// Locks in this broker's schema, each held with `lease` that its guard renews (a
    /// holder that dies frees it within `lease`).
    pub fn locks(&self, lease: Duration) -> Leased<PostgresLocks> {
        Leased::new(self.lock_server(), lease)
    }

    /// This schema's locks with any lease ([`artel_lock::LockServer`]).
    pub fn lock_server(&self) -> PostgresLocks {
        PostgresLocks { shared: self.shared.clone() }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn io(what: &str, e: sqlx::Error) -> std::io::Error {
    std::io::Error::other(pg_error(what, e))
}

#[async_trait]
impl LeaseLocks for PostgresLocks {
    async fn take(&self, key: &str, lease: Duration) -> std::io::Result<Option<(String, u64)>> {
        let (token, now) = (artel_lock::token(), self.shared.now_ms());
        let fence: Option<i64> = sqlx::query_scalar(include_str!("../queries/lock/take.sql"))
            .bind(key)
            .bind(&token)
            .bind(now)
            .bind(now.saturating_add(millis(lease)))
            .fetch_optional(&self.shared.pool)
            .await
            .map_err(|e| io("taking a lock", e))?;
        Ok(fence.map(|fence| (token, u64::try_from(fence).unwrap_or(0))))
    }

    async fn renew(&self, key: &str, token: &str, lease: Duration) -> std::io::Result<bool> {
        let now = self.shared.now_ms();
        let done = sqlx::query(include_str!("../queries/lock/renew.sql"))
            .bind(key)
            .bind(token)
            .bind(now)
            .bind(now.saturating_add(millis(lease)))
            .execute(&self.shared.pool)
            .await
            .map_err(|e| io("renewing a lock", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, key: &str, token: &str) -> std::io::Result<()> {
        sqlx::query(include_str!("../queries/lock/release.sql"))
            .bind(key)
            .bind(token)
            .execute(&self.shared.pool)
            .await
            .map_err(|e| io("releasing a lock", e))?;
        Ok(())
    }
}

#[async_trait]
impl Fenced for PostgresLocks {
    async fn advance(&self, key: &str, fence: u64, value: i64) -> Result<bool, LockError> {
        let done = sqlx::query(include_str!("../queries/fenced/advance.sql"))
            .bind(key)
            .bind(i64::try_from(fence).unwrap_or(i64::MAX))
            .bind(value)
            .execute(&self.shared.pool)
            .await
            .map_err(|e| LockError::Io { key: key.to_owned(), source: io("advancing a fenced value", e) })?;
        Ok(done.rows_affected() == 1)
    }

    async fn read(&self, key: &str) -> Result<Option<i64>, LockError> {
        sqlx::query_scalar(include_str!("../queries/fenced/read.sql"))
            .bind(key)
            .fetch_optional(&self.shared.pool)
            .await
            .map_err(|e| LockError::Io { key: key.to_owned(), source: io("reading a fenced value", e) })
    }
}

#[async_trait]
impl UniqueKeys for PostgresLocks {
    async fn claim_unique(&self, key: &str, task_id: &str, ttl: Duration) -> BrokerResult<String> {
        let now = self.shared.now_ms();
        sqlx::query_scalar(include_str!("../queries/unique/claim.sql"))
            .bind(key)
            .bind(task_id)
            .bind(now)
            .bind(now.saturating_add(millis(ttl)))
            .fetch_one(&self.shared.pool)
            .await
            .map_err(|e| pg_error("claiming a unique key", e))
    }

    async fn release_unique(&self, key: &str, task_id: &str) -> BrokerResult<()> {
        sqlx::query(include_str!("../queries/unique/release.sql"))
            .bind(key)
            .bind(task_id)
            .execute(&self.shared.pool)
            .await
            .map_err(|e| pg_error("releasing a unique key", e))?;
        Ok(())
    }
}

/// One admission in this many also deletes the rate limits idle for [`IDLE`].
const PURGE_EVERY: u32 = 64;

/// How long a rate limit has nothing ahead of it before its row is deleted (an idle row
/// admits as no row does; long idle, no run is asking about it).
const IDLE: Duration = Duration::from_secs(3600);

#[async_trait]
impl RateLimits for PostgresLocks {
    async fn admit(&self, key: &str, interval: Duration, book: bool) -> BrokerResult<Admission> {
        let failed = |e| pg_error("admitting a rate-limited run", e);
        if fastrand::u32(..PURGE_EVERY) == 0 {
            let since = self.shared.now_us().saturating_sub(i64::try_from(IDLE.as_micros()).unwrap_or(i64::MAX));
            sqlx::query(include_str!("../queries/rate/purge.sql"))
                .bind(since)
                .execute(&self.shared.pool)
                .await
                .map_err(failed)?;
        }
        let mut tx = self.shared.pool.begin().await.map_err(failed)?;
        sqlx::query(include_str!("../queries/rate/create.sql")).bind(key).execute(&mut *tx).await.map_err(failed)?;
        let state: Option<(i64, i64)> = sqlx::query_as(include_str!("../queries/rate/read.sql"))
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed)?;
        let state = state.map(|(ready, booked)| artel_core::rates::RateState { ready, booked });
        // Read once the row is locked: a time read while waiting for it would be stale.
        let (state, admission) = artel_core::rates::admit(state, self.shared.now_us(), interval, book);
        sqlx::query(include_str!("../queries/rate/write.sql"))
            .bind(key)
            .bind(state.ready)
            .bind(state.booked)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(admission)
    }
}
