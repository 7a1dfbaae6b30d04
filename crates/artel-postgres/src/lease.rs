//! The storage verbs of PostgreSQL's leases, for [`artel_core::leased::LeasedConsumer`]:
//! a claim sets `visible_at` to the lease's end and records the holder's token (skipping
//! rows other claims hold locked), and every later write is guarded by that token.

use std::time::Duration;

use artel_core::leased::{Claim, Claimed, LeaseStore, Stored};
use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, FailedTask, Queues, TaskResult};
use async_trait::async_trait;
use tokio::sync::{oneshot, watch};

use crate::completer::Completion;

use crate::shared::{Shared, pg_error};

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One claim in this many also drops the fair groups with nothing left.
const FORGET_EVERY: u32 = 64;

impl Shared {
    /// Drops the fair groups of `queues` with no message left (a failure only waits for
    /// the next try: idle groups cost a claim little).
    async fn forget_idle_groups(&self, queues: &Queues) {
        for queue in queues.iter() {
            if let Err(error) = self.forget_idle_groups_of(queue).await {
                tracing::debug!(error = %pg_error("dropping idle fair groups", error), "kept until the next try");
            }
        }
    }

    /// Under the queue's fair lock, taken first in its own statement: the deletion's
    /// snapshot then holds every publish that joined a group before it.
    async fn forget_idle_groups_of(&self, queue: &str) -> Result<(), sqlx::Error> {
        let mut tx = self.settle.begin().await?;
        sqlx::query(include_str!("../queries/fair/lock.sql")).bind(queue).execute(&mut *tx).await?;
        sqlx::query(include_str!("../queries/fair/forget.sql")).bind(queue).execute(&mut *tx).await?;
        tx.commit().await
    }
}

#[async_trait]
impl LeaseStore for Shared {
    /// The message's row id.
    type Id = i64;
    /// Sees the publish notifications.
    type Waiter = watch::Receiver<u64>;

    fn heartbeat_every(&self) -> Duration {
        self.config.lease / 3
    }

    async fn waiter(&self, _queues: &Queues) -> BrokerResult<Self::Waiter> {
        Ok(self.published.subscribe())
    }

    /// Each queue's claim is one statement committed on its own (no transaction: two
    /// round trips fewer). Messages already claimed when a later queue's claim fails are
    /// handed out, not lost; the error then waits for the next claim.
    async fn claim(&self, queues: &Queues, holder: &str, limit: usize) -> BrokerResult<Claim<i64>> {
        let claiming = |e| pg_error("claiming messages", e);
        let now = self.now_ms();
        let lease_until = now + millis(self.config.lease);
        let mut messages = Vec::new();
        for queue in queues.iter() {
            let left = limit - messages.len();
            if left == 0 {
                break;
            }
            let claimed = sqlx::query_as(include_str!("../queries/message/claim.sql"))
                .bind(queue)
                .bind(now)
                .bind(lease_until)
                .bind(holder)
                .bind(i64::try_from(left).unwrap_or(i64::MAX))
                .bind(self.now_us())
                .fetch_all(&self.settle)
                .await;
            let rows: Vec<(i64, Vec<u8>, i32)> = match claimed {
                Ok(rows) => rows,
                Err(e) if messages.is_empty() => return Err(claiming(e)),
                Err(e) => {
                    tracing::warn!(error = %claiming(e), "claimed from some queues only");
                    break;
                }
            };
            messages.extend(rows.into_iter().map(|(id, envelope, deliveries)| Claimed {
                id,
                envelope,
                deliveries: u32::try_from(deliveries).unwrap_or(0),
            }));
        }
        if fastrand::u32(..FORGET_EVERY) == 0 {
            self.forget_idle_groups(queues).await;
        }
        let mut next = None;
        if messages.is_empty() {
            for queue in queues.iter() {
                let at: Option<i64> = sqlx::query_scalar(include_str!("../queries/message/next_visible.sql"))
                    .bind(queue)
                    .fetch_one(&self.settle)
                    .await
                    .map_err(claiming)?;
                next = match (next, at) {
                    (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                    (a, b) => a.or(b),
                };
            }
        }
        let next_visible = next.map(|at| Duration::from_millis(u64::try_from(at - self.now_ms()).unwrap_or(0)));
        Ok(Claim { messages, next_visible })
    }

    /// Publish notifications wake the waiter at once; polling only covers a lost listener
    /// and delayed messages coming due.
    async fn wait_for_work(&self, waiter: &mut Self::Waiter, due_in: Option<Duration>) -> BrokerResult<()> {
        artel_core::leased::wait_for_publish(waiter, due_in, self.config.poll_interval).await;
        Ok(())
    }

    async fn extend(&self, holder: &str, held: &[i64]) -> BrokerResult<()> {
        if held.is_empty() {
            return Ok(());
        }
        sqlx::query(include_str!("../queries/message/extend.sql"))
            .bind(holder)
            .bind(self.now_ms() + millis(self.config.lease))
            .bind(held)
            .execute(&self.settle)
            .await
            .map_err(|e| pg_error("extending leases", e))?;
        Ok(())
    }

    async fn ack(&self, holder: &str, id: &i64) -> BrokerResult<bool> {
        let done = sqlx::query(include_str!("../queries/message/ack.sql"))
            .bind(id)
            .bind(holder)
            .execute(&self.settle)
            .await
            .map_err(|e| pg_error("acknowledging a message", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn ack_failed(&self, holder: &str, id: &i64, failure: &FailedTask) -> BrokerResult<bool> {
        let failing = |e| pg_error("recording a failed task", e);
        let entry = serde_json::to_string(failure)
            .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a failure").with_source(e))?;
        let mut tx = self.settle.begin().await.map_err(failing)?;
        let queue: Option<String> = sqlx::query_scalar(include_str!("../queries/failed/record.sql"))
            .bind(id)
            .bind(holder)
            .bind(&failure.task)
            .bind(failure.failed_at_ms)
            .bind(entry)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failing)?;
        if let Some(queue) = queue {
            sqlx::query(include_str!("../queries/failed/trim.sql"))
                .bind(queue)
                .bind(i64::from(self.config.failed_kept))
                .execute(&mut *tx)
                .await
                .map_err(failing)?;
        }
        let acked = sqlx::query(include_str!("../queries/message/ack.sql"))
            .bind(id)
            .bind(holder)
            .execute(&mut *tx)
            .await
            .map_err(failing)?;
        tx.commit().await.map_err(failing)?;
        Ok(acked.rows_affected() == 1)
    }

    /// Joins the next batch of completions (see [`crate::completer`]).
    async fn ack_with_result(
        &self,
        holder: &str,
        id: &i64,
        result: &TaskResult,
        ttl: Option<Duration>,
    ) -> BrokerResult<Option<Stored>> {
        let (reply, stored) = oneshot::channel();
        let completion = Completion {
            message_id: *id,
            holder: holder.to_owned(),
            task_id: result.task_id.clone(),
            state: result.status.as_str(),
            result: crate::backend::encode(result)?,
            expires_at: ttl.map(|ttl| self.now_ms().saturating_add(millis(ttl))),
            reply,
        };
        let gone = || BrokerError::new(BrokerErrorKind::Connection, "the PostgreSQL broker was closed");
        self.completions.send(completion).map_err(|_| gone())?;
        stored.await.map_err(|_| gone())?.map(Some)
    }

    async fn release(&self, holder: &str, id: &i64) -> BrokerResult<()> {
        let releasing = |e| pg_error("releasing a message", e);
        let mut tx = self.settle.begin().await.map_err(releasing)?;
        sqlx::query(include_str!("../queries/message/release.sql"))
            .bind(id)
            .bind(holder)
            .bind(self.now_ms())
            .execute(&mut *tx)
            .await
            .map_err(releasing)?;
        // Other processes' consumers may be waiting for it.
        sqlx::query(include_str!("../queries/notify.sql"))
            .bind(&self.published_channel)
            .bind("")
            .execute(&mut *tx)
            .await
            .map_err(releasing)?;
        tx.commit().await.map_err(releasing)
    }

    async fn bury(&self, holder: &str, id: &i64, reason: &str) -> BrokerResult<()> {
        sqlx::query(include_str!("../queries/message/bury.sql"))
            .bind(id)
            .bind(holder)
            .bind(reason)
            .bind(self.now_ms())
            .execute(&self.settle)
            .await
            .map_err(|e| pg_error("dead-lettering a message", e))?;
        Ok(())
    }
}
