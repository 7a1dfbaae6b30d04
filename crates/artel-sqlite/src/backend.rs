//! Results in the same file: guarded writes, TTLs, expiry sweeping, waiting.

use std::sync::atomic::Ordering;
use std::time::Duration;

use artel_core::{
    BrokerError, BrokerErrorKind, BrokerResult, Chords, PolledFeed, ResultBackend, ResultFeed, Revocation, Revocations,
    TaskResult,
};
use async_trait::async_trait;

use crate::broker::SqliteBroker;
use crate::queries::{self, ChordPart, NewResult};

/// How often expired results are deleted (by whichever process stores a result).
const SWEEP_EVERY_MS: i64 = 30_000;
/// Rows one sweep deletes at most, so a sweep never holds the write lock long.
const SWEEP_LIMIT: usize = 5_000;
/// Revocations one poll reads at most.
const REVOCATIONS_PER_READ: usize = 10_000;

fn encode(result: &TaskResult) -> BrokerResult<Vec<u8>> {
    serde_json::to_vec(result).map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a result").with_source(e))
}

fn decode(owner: &str, json: &[u8]) -> BrokerResult<TaskResult> {
    serde_json::from_slice(json).map_err(|e| {
        BrokerError::new(BrokerErrorKind::Corrupt, format!("stored result of {owner} is not valid JSON")).with_source(e)
    })
}

impl SqliteBroker {
    /// When something stored now with `ttl` expires (unix ms); `None` keeps it.
    fn expiry(&self, ttl: Option<Duration>) -> Option<i64> {
        let now = self.shared.now_ms();
        ttl.map(|ttl| now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)))
    }
}

#[async_trait]
impl ResultBackend for SqliteBroker {
    fn store_identity(&self) -> Option<usize> {
        Some(std::sync::Arc::as_ptr(&self.shared) as usize)
    }

    async fn store(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<bool> {
        let now = self.shared.now_ms();
        let json = encode(result)?;
        let state = result.status.as_str();
        let task_id = result.task_id.clone();
        let expires_at = self.expiry(ttl);
        let last = self.shared.last_sweep_ms.load(Ordering::Relaxed);
        let sweep = now - last >= SWEEP_EVERY_MS
            && self.shared.last_sweep_ms.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_ok();
        let written = self
            .shared
            .db
            .call("storing a result", move |tx| {
                if sweep {
                    queries::result_sweep(tx, now, SWEEP_LIMIT)?;
                    queries::control_sweep(tx, now)?;
                }
                let row = NewResult { task_id: &task_id, state, result: &json, expires_at, now };
                queries::result_store(tx, &row)
            })
            .await?;
        self.shared.wake_waiters();
        Ok(written)
    }

    async fn get(&self, task_id: &str) -> BrokerResult<Option<TaskResult>> {
        let (id, now) = (task_id.to_owned(), self.shared.now_ms());
        let Some(json) = self.shared.db.call("reading a result", move |tx| queries::result_get(tx, &id, now)).await?
        else {
            return Ok(None);
        };
        decode(task_id, &json).map(Some)
    }

    async fn get_many(&self, task_ids: &[String]) -> BrokerResult<Vec<Option<TaskResult>>> {
        let (ids, now) = (task_ids.to_vec(), self.shared.now_ms());
        let stored: Vec<Option<Vec<u8>>> = self
            .shared
            .db
            .call("reading results", move |tx| ids.iter().map(|id| queries::result_get(tx, id, now)).collect())
            .await?;
        task_ids.iter().zip(stored).map(|(id, json)| json.map(|j| decode(id, &j)).transpose()).collect()
    }

    /// Stores wake the watch at once (other processes' through `crate::wake`); polling
    /// covers what a wake-up missed.
    async fn feed(&self) -> BrokerResult<Box<dyn ResultFeed>> {
        self.shared.listen(crate::wake::Topic::Stored);
        Ok(Box::new(PolledFeed::new(Some(self.shared.stored.clone()), self.shared.config.result_poll)))
    }

    /// Stores wake the waiter at once (other processes' through `crate::wake`); polling
    /// covers what a wake-up missed.
    async fn wait(&self, task_id: &str, timeout: Duration) -> BrokerResult<TaskResult> {
        self.shared.listen(crate::wake::Topic::Stored);
        let poll = self.shared.config.result_poll;
        self.shared.stored.wait_ready(task_id, timeout, poll, || self.get(task_id)).await
    }
}

#[async_trait]
impl Chords for SqliteBroker {
    async fn chord_part(
        &self,
        group_id: &str,
        index: u32,
        size: Option<u32>,
        result: &TaskResult,
        ttl: Option<Duration>,
    ) -> BrokerResult<Option<Vec<TaskResult>>> {
        let size = size.ok_or_else(|| artel_core::results::unknown_chord_size(group_id))?;
        let json = encode(result)?;
        let group = group_id.to_owned();
        let expires_at = self.expiry(ttl);
        let parts = self
            .shared
            .db
            .call("recording a chord member", move |tx| {
                let part = ChordPart { group_id: &group, index, result: &json, expires_at };
                queries::chord_part(tx, &part, size)
            })
            .await?;
        let Some(parts) = parts else { return Ok(None) };
        parts.iter().map(|json| decode(group_id, json)).collect::<BrokerResult<_>>().map(Some)
    }
}

#[async_trait]
impl Revocations for SqliteBroker {
    async fn revoke(&self, revocation: &Revocation) -> BrokerResult<()> {
        let (id, terminate) = (revocation.task_id.clone(), revocation.terminate);
        let expires_at = revocation.expires_at.timestamp_millis();
        self.shared.db.call("recording a revocation", move |tx| queries::revoke(tx, &id, terminate, expires_at)).await
    }

    async fn revocations(&self, cursor: u64) -> BrokerResult<(Vec<Revocation>, u64)> {
        let now = self.shared.now_ms();
        let from = i64::try_from(cursor).unwrap_or(i64::MAX);
        let rows = self
            .shared
            .db
            .call("reading revocations", move |tx| queries::revocations(tx, from, now, REVOCATIONS_PER_READ))
            .await?;
        let next = rows.last().map_or(cursor, |(seq, ..)| u64::try_from(*seq).unwrap_or(cursor));
        let revocations = rows
            .into_iter()
            .filter_map(|(_, task_id, terminate, expires_at)| Revocation::from_row(task_id, terminate, expires_at))
            .collect();
        Ok((revocations, next))
    }
}
