//! The storage verbs of SQLite's leases, for [`artel_core::leased::LeasedConsumer`]: a
//! claim sets `visible_at` to the lease's end and records the holder's token, and every
//! later write is guarded by that token.

use std::time::Duration;

use artel_core::leased::{Claim, Claimed, LeaseStore};
use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, FailedTask, Queues};
use async_trait::async_trait;
use tokio::sync::watch;

use crate::queries;
use crate::shared::Shared;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl LeaseStore for Shared {
    /// The message's row id.
    type Id = i64;
    /// Sees this process's publishes and hand-backs.
    type Waiter = watch::Receiver<u64>;

    fn heartbeat_every(&self) -> Duration {
        self.config.lease / 3
    }

    async fn waiter(&self, _queues: &Queues) -> BrokerResult<Self::Waiter> {
        self.listen(crate::wake::Topic::Published);
        Ok(self.published.subscribe())
    }

    async fn claim(&self, queues: &Queues, holder: &str, limit: usize) -> BrokerResult<Claim<i64>> {
        let (queues, holder) = (queues.clone(), holder.to_owned());
        let (now, now_us) = (self.now_ms(), self.now_us());
        let lease_until = now + millis(self.config.lease);
        let (claimed, next) = self
            .db
            .call("claiming messages", move |tx| {
                let mut claimed = Vec::new();
                for queue in queues.iter() {
                    let left = limit - claimed.len();
                    if left == 0 {
                        break;
                    }
                    let lease = queries::Lease { now, now_us, until: lease_until, token: &holder, limit: left };
                    claimed.extend(queries::claim(tx, queue, &lease)?);
                }
                let mut next = None;
                if claimed.is_empty() {
                    for queue in queues.iter() {
                        next = match (next, queries::next_visible(tx, queue)?) {
                            (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                            (a, b) => a.or(b),
                        };
                    }
                }
                Ok((claimed, next))
            })
            .await?;
        let messages =
            claimed.into_iter().map(|(id, envelope, deliveries)| Claimed { id, envelope, deliveries }).collect();
        let next_visible = next.map(|at| Duration::from_millis(u64::try_from(at - self.now_ms()).unwrap_or(0)));
        Ok(Claim { messages, next_visible })
    }

    /// Publishes wake the waiter at once (other processes' through `crate::wake`);
    /// polling covers what a wake-up missed.
    async fn wait_for_work(&self, waiter: &mut Self::Waiter, due_in: Option<Duration>) -> BrokerResult<()> {
        artel_core::leased::wait_for_publish(waiter, due_in, self.config.poll_interval).await;
        Ok(())
    }

    async fn extend(&self, holder: &str, held: &[i64]) -> BrokerResult<()> {
        if held.is_empty() {
            return Ok(());
        }
        let (holder, until) = (holder.to_owned(), self.now_ms() + millis(self.config.lease));
        self.db.call("extending leases", move |tx| queries::extend(tx, &holder, until)).await.map(drop)
    }

    async fn ack(&self, holder: &str, id: &i64) -> BrokerResult<bool> {
        let (id, holder) = (*id, holder.to_owned());
        self.db.call("acknowledging a message", move |tx| queries::ack(tx, id, &holder)).await
    }

    async fn ack_failed(&self, holder: &str, id: &i64, failure: &FailedTask) -> BrokerResult<bool> {
        let entry = serde_json::to_string(failure)
            .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a failure").with_source(e))?;
        let (id, holder, task) = (*id, holder.to_owned(), failure.task.clone());
        let (failed_at, keep) = (failure.failed_at_ms, self.config.failed_kept);
        self.db
            .call("recording a failed task", move |tx| {
                let failure = queries::Failure { id, token: &holder, task: &task, failed_at, entry: &entry, keep };
                queries::fail(tx, &failure)
            })
            .await
    }

    async fn release(&self, holder: &str, id: &i64) -> BrokerResult<()> {
        let (id, holder, now) = (*id, holder.to_owned(), self.now_ms());
        self.db.call("releasing a message", move |tx| queries::release(tx, id, &holder, now)).await?;
        self.wake_consumers();
        Ok(())
    }

    async fn bury(&self, holder: &str, id: &i64, reason: &str) -> BrokerResult<()> {
        let (id, holder, now, reason) = (*id, holder.to_owned(), self.now_ms(), reason.to_owned());
        self.db.call("dead-lettering a message", move |tx| queries::bury(tx, id, &holder, &reason, now).map(drop)).await
    }
}
