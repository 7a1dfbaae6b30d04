//! Results in the same file: guarded writes, TTLs, expiry sweeping, waiting.

use std::sync::atomic::Ordering;
use std::time::Duration;

use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, ResultBackend, TaskResult};
use async_trait::async_trait;
use tokio::time::Instant;

use crate::broker::SqliteBroker;
use crate::queries::{self, NewResult};

/// How often expired results are deleted (by whichever process stores a result).
const SWEEP_EVERY_MS: i64 = 30_000;
/// Rows one sweep deletes at most, so a sweep never holds the write lock long.
const SWEEP_LIMIT: usize = 5_000;
/// A waiter looks for results stored by another process at the broker's poll interval,
/// but at least this often.
const WAIT_POLL_MAX: Duration = Duration::from_millis(20);

#[async_trait]
impl ResultBackend for SqliteBroker {
    async fn store(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<bool> {
        let now = self.shared.now_ms();
        let json = serde_json::to_vec(result)
            .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a result").with_source(e))?;
        let state = result.status.as_str();
        let task_id = result.task_id.clone();
        let expires_at = ttl.map(|ttl| now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)));
        let last = self.shared.last_sweep_ms.load(Ordering::Relaxed);
        let sweep = now - last >= SWEEP_EVERY_MS
            && self.shared.last_sweep_ms.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_ok();
        let written = self
            .shared
            .db
            .call("storing a result", move |tx| {
                if sweep {
                    queries::result_sweep(tx, now, SWEEP_LIMIT)?;
                }
                let row = NewResult { task_id: &task_id, state, result: &json, expires_at, now };
                queries::result_store(tx, &row)
            })
            .await?;
        self.shared.stored.notify_waiters();
        Ok(written)
    }

    async fn get(&self, task_id: &str) -> BrokerResult<Option<TaskResult>> {
        let (id, now) = (task_id.to_owned(), self.shared.now_ms());
        let Some(json) = self.shared.db.call("reading a result", move |tx| queries::result_get(tx, &id, now)).await?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&json).map(Some).map_err(|e| {
            BrokerError::new(BrokerErrorKind::Corrupt, format!("stored result of task {task_id} is not valid JSON"))
                .with_source(e)
        })
    }

    async fn wait(&self, task_id: &str, timeout: Duration) -> BrokerResult<TaskResult> {
        let deadline = Instant::now() + timeout;
        loop {
            let stored = self.shared.stored.notified();
            tokio::pin!(stored);
            stored.as_mut().enable();
            if let Some(result) = self.get(task_id).await?.filter(|r| r.status.is_ready()) {
                return Ok(result);
            }
            if Instant::now() >= deadline {
                return Err(BrokerError::new(
                    BrokerErrorKind::Timeout,
                    format!("task {task_id} was not ready within {timeout:?}"),
                ));
            }
            // Local stores wake us at once; other processes' stores are seen by polling.
            let poll = self.shared.config.poll_interval.min(WAIT_POLL_MAX);
            let _ = tokio::time::timeout_at(deadline.min(Instant::now() + poll), stored).await;
        }
    }
}
