//! Results, chord counting and revocations in the same database: guarded writes with
//! TTLs, a NOTIFY per ready result, batched reads.

use std::time::Duration;

use artel_core::{
    BrokerError, BrokerErrorKind, BrokerResult, Chords, ResultBackend, ResultFeed, Revocation, Revocations, TaskResult,
};
use async_trait::async_trait;
use sqlx::PgPool;

use crate::broker::PostgresBroker;
use crate::shared::pg_error;

/// Revocations one poll reads at most.
const REVOCATIONS_PER_READ: i64 = 10_000;
/// Expired results one sweep deletes at most: one sweep follows about every this many
/// stores, so expired results leave at the pace new ones come.
const SWEEP_LIMIT: u64 = 1_000;

pub(crate) fn encode(result: &TaskResult) -> BrokerResult<Vec<u8>> {
    serde_json::to_vec(result).map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a result").with_source(e))
}

fn decode(owner: &str, json: &[u8]) -> BrokerResult<TaskResult> {
    serde_json::from_slice(json).map_err(|e| {
        BrokerError::new(BrokerErrorKind::Corrupt, format!("stored result of {owner} is not valid JSON")).with_source(e)
    })
}

/// Counts `stored` more results written here; true when that crossed a multiple of
/// [`SWEEP_LIMIT`] (the sweep needs no exact schedule).
pub(crate) fn sweep_due(stored: u64) -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STORED: AtomicU64 = AtomicU64::new(0);
    let before = STORED.fetch_add(stored, Ordering::Relaxed);
    before / SWEEP_LIMIT != before.wrapping_add(stored) / SWEEP_LIMIT
}

/// Deletes up to [`SWEEP_LIMIT`] results expired by `now`: whoever stores does it now and
/// then ([`sweep_due`]).
pub(crate) async fn sweep(pool: &PgPool, now: i64) -> BrokerResult<()> {
    sqlx::query(include_str!("../queries/result/sweep.sql"))
        .bind(now)
        .bind(SWEEP_LIMIT as i64)
        .execute(pool)
        .await
        .map_err(|e| pg_error("deleting expired results", e))?;
    Ok(())
}

#[async_trait]
impl ResultBackend for PostgresBroker {
    fn store_identity(&self) -> Option<usize> {
        Some(std::sync::Arc::as_ptr(&self.shared) as usize)
    }

    /// Writes `result` (a final one is never replaced) and, once it is committed, has a
    /// ready one announced: a waiter woken earlier would read nothing and sleep on.
    async fn store(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<bool> {
        let storing = |e| pg_error("storing a result", e);
        let shared = &self.shared;
        let now = shared.now_ms();
        let expires_at = ttl.map(|ttl| now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)));
        let written = sqlx::query(include_str!("../queries/result/store.sql"))
            .bind(&result.task_id)
            .bind(result.status.as_str())
            .bind(encode(result)?)
            .bind(expires_at)
            .bind(now)
            .execute(&shared.pool)
            .await
            .map_err(storing)?
            .rows_affected()
            == 1;
        if written && result.status.is_ready() {
            shared.announce_result();
        }
        if sweep_due(1) {
            sweep(&shared.pool, now).await?;
        }
        Ok(written)
    }

    async fn get(&self, task_id: &str) -> BrokerResult<Option<TaskResult>> {
        Ok(self.get_many(&[task_id.to_owned()]).await?.pop().flatten())
    }

    async fn get_many(&self, task_ids: &[String]) -> BrokerResult<Vec<Option<TaskResult>>> {
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(include_str!("../queries/result/get_many.sql"))
            .bind(task_ids)
            .bind(self.shared.now_ms())
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|e| pg_error("reading results", e))?;
        let mut found: std::collections::HashMap<String, Vec<u8>> = rows.into_iter().collect();
        task_ids.iter().map(|id| found.remove(id).map(|json| decode(id, &json)).transpose()).collect()
    }

    /// Woken by the listener; the poll only covers a lost one.
    async fn wait(&self, task_id: &str, timeout: Duration) -> BrokerResult<TaskResult> {
        let poll = self.shared.config.poll_interval;
        self.shared.stored.wait_ready(task_id, timeout, poll, || self.get(task_id)).await
    }

    async fn feed(&self) -> BrokerResult<Box<dyn ResultFeed>> {
        let announced = self.shared.announced.subscribe();
        Ok(Box::new(crate::feed::NamedFeed { announced, poll: self.shared.config.poll_interval }))
    }
}

#[async_trait]
impl Chords for PostgresBroker {
    async fn chord_part(
        &self,
        group_id: &str,
        index: u32,
        size: Option<u32>,
        result: &TaskResult,
        ttl: Option<Duration>,
    ) -> BrokerResult<Option<Vec<TaskResult>>> {
        let recording = |e| pg_error("recording a chord member", e);
        let size = size.ok_or_else(|| artel_core::results::unknown_chord_size(group_id))?;
        let expires_at = ttl.map(|ttl| self.shared.now_ms() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let mut tx = self.shared.pool.begin().await.map_err(recording)?;
        sqlx::query(include_str!("../queries/chord/lock.sql"))
            .bind(group_id)
            .execute(&mut *tx)
            .await
            .map_err(recording)?;
        sqlx::query(include_str!("../queries/chord/record.sql"))
            .bind(group_id)
            .bind(i32::try_from(index).unwrap_or(i32::MAX))
            .bind(encode(result)?)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(recording)?;
        let parts: Vec<Vec<u8>> = sqlx::query_scalar(include_str!("../queries/chord/parts.sql"))
            .bind(group_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(recording)?;
        tx.commit().await.map_err(recording)?;
        if parts.len() < usize::try_from(size).unwrap_or(usize::MAX) {
            return Ok(None);
        }
        parts.iter().map(|json| decode(group_id, json)).collect::<BrokerResult<_>>().map(Some)
    }
}

#[async_trait]
impl Revocations for PostgresBroker {
    async fn revoke(&self, revocation: &Revocation) -> BrokerResult<()> {
        sqlx::query(include_str!("../queries/revoke/insert.sql"))
            .bind(&revocation.task_id)
            .bind(revocation.terminate)
            .bind(revocation.expires_at.timestamp_millis())
            .execute(&self.shared.pool)
            .await
            .map_err(|e| pg_error("recording a revocation", e))?;
        Ok(())
    }

    async fn revocations(&self, cursor: u64) -> BrokerResult<(Vec<Revocation>, u64)> {
        let rows: Vec<(i64, String, bool, i64)> = sqlx::query_as(include_str!("../queries/revoke/since.sql"))
            .bind(i64::try_from(cursor).unwrap_or(i64::MAX))
            .bind(self.shared.now_ms())
            .bind(REVOCATIONS_PER_READ)
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|e| pg_error("reading revocations", e))?;
        let next = rows.last().map_or(cursor, |(seq, ..)| u64::try_from(*seq).unwrap_or(cursor));
        let revocations = rows
            .into_iter()
            .filter_map(|(_, task_id, terminate, expires_at)| Revocation::from_row(task_id, terminate, expires_at))
            .collect();
        Ok((revocations, next))
    }
}
