//! Claiming messages in batches, keeping their leases alive, and settling them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use artel_core::{Acknowledge, BrokerResult, Consumer, Delivery, FailedTask, Message};
use async_trait::async_trait;
use tokio::task::JoinHandle;

use crate::broker::Shared;
use crate::queries;

/// One `consume` call: a lease holder with its own token.
pub(crate) struct SqliteConsumer {
    shared: Arc<Shared>,
    queues: Vec<String>,
    prefetch: usize,
    token: Arc<str>,
    /// Claimed, not yet handed out: (row id, message, deliveries).
    buffer: VecDeque<(i64, Message, u32)>,
    heartbeat: JoinHandle<()>,
}

impl SqliteConsumer {
    pub(crate) fn new(shared: Arc<Shared>, queues: Vec<String>, prefetch: usize) -> Self {
        let token: Arc<str> = uuid::Uuid::new_v4().to_string().into();
        let heartbeat = tokio::spawn(heartbeat(shared.clone(), token.clone()));
        Self { shared, queues, prefetch, token, buffer: VecDeque::new(), heartbeat }
    }

    /// Claims up to `prefetch` messages across the queues, in queue order; when none is
    /// ready, says when the next delayed or leased one becomes visible.
    async fn claim(&self) -> BrokerResult<(Vec<(i64, Vec<u8>, u32)>, Option<i64>)> {
        let (queues, token, limit) = (self.queues.clone(), self.token.clone(), self.prefetch);
        let now = self.shared.now_ms();
        let lease_until = now + millis(self.shared.config.lease);
        self.shared
            .db
            .call("claiming messages", move |tx| {
                let mut claimed = Vec::new();
                for queue in &queues {
                    let left = limit - claimed.len();
                    if left == 0 {
                        break;
                    }
                    claimed.extend(queries::claim(tx, queue, now, lease_until, &token, left)?);
                }
                let mut next = None;
                if claimed.is_empty() {
                    for queue in &queues {
                        next = match (next, queries::next_visible(tx, queue)?) {
                            (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                            (a, b) => a.or(b),
                        };
                    }
                }
                Ok((claimed, next))
            })
            .await
    }

    async fn bury_undecodable(&self, id: i64, error: artel_core::DecodeError) -> BrokerResult<()> {
        let (token, now) = (self.token.clone(), self.shared.now_ms());
        let reason = format!("undecodable message: {error}");
        tracing::error!(id, %reason, "message moved to dead letter");
        self.shared
            .db
            .call("dead-lettering a message", move |tx| queries::bury(tx, id, &token, &reason, now).map(drop))
            .await
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Extends every lease of `token` a few times per lease period, until the consumer drops.
async fn heartbeat(shared: Arc<Shared>, token: Arc<str>) {
    let lease = shared.config.lease;
    loop {
        tokio::time::sleep(lease / 3).await;
        let until = shared.now_ms() + millis(lease);
        let token = token.clone();
        if let Err(error) = shared.db.call("extending leases", move |tx| queries::extend(tx, &token, until)).await {
            tracing::warn!(%error, "could not extend leases; held messages may be delivered again");
        }
    }
}

#[async_trait]
impl Consumer for SqliteConsumer {
    async fn next(&mut self) -> BrokerResult<Delivery> {
        loop {
            if let Some((id, message, deliveries)) = self.buffer.pop_front() {
                let acker = SqliteAcker { shared: self.shared.clone(), id, token: self.token.clone() };
                return Ok(Delivery::new(message, Box::new(acker)).with_deliveries(deliveries));
            }
            let published = self.shared.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let (claimed, next_visible) = self.claim().await?;
            for (id, envelope, deliveries) in claimed {
                match Message::from_envelope_or_salvage(&envelope) {
                    Ok(message) => self.buffer.push_back((id, message, deliveries)),
                    Err(error) => self.bury_undecodable(id, error).await?,
                }
            }
            if !self.buffer.is_empty() {
                continue;
            }
            let poll = self.shared.config.poll_interval;
            let until_visible = next_visible
                .map(|at| Duration::from_millis(u64::try_from(at - self.shared.now_ms()).unwrap_or(0)))
                .unwrap_or(poll);
            let _ = tokio::time::timeout(poll.min(until_visible), published).await;
        }
    }
}

impl Drop for SqliteConsumer {
    fn drop(&mut self) {
        self.heartbeat.abort();
        // Prefetched messages never started: hand them back now rather than after the
        // lease. Delivered ones are their deliveries' to settle (a run that cannot be
        // stopped keeps its message held until the process exits).
        let ids: Vec<i64> = self.buffer.drain(..).map(|(id, ..)| id).collect();
        if ids.is_empty() {
            return;
        }
        let (token, now) = (self.token.clone(), self.shared.now_ms());
        self.shared.db.spawn("releasing prefetched messages", move |tx| {
            ids.iter().try_for_each(|id| queries::release(tx, *id, &token, now))
        });
    }
}

impl std::fmt::Debug for SqliteConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteConsumer").field("queues", &self.queues).field("buffered", &self.buffer.len()).finish()
    }
}

/// Warns when a settling write found the message no longer held by this consumer.
fn lapsed_unless(held: bool, id: i64) {
    if !held {
        tracing::warn!(id, "acked a message whose lease had lapsed; another worker may run it again");
    }
}

/// Settles one claimed message; every write is guarded by the holder's token.
#[derive(Debug)]
struct SqliteAcker {
    shared: Arc<Shared>,
    id: i64,
    token: Arc<str>,
}

#[async_trait]
impl Acknowledge for SqliteAcker {
    async fn ack(&self) -> BrokerResult<()> {
        let (id, token) = (self.id, self.token.clone());
        let held = self.shared.db.call("acknowledging a message", move |tx| queries::ack(tx, id, &token)).await?;
        lapsed_unless(held, id);
        Ok(())
    }

    async fn requeue(&self) -> BrokerResult<()> {
        let (id, token, now) = (self.id, self.token.clone(), self.shared.now_ms());
        self.shared.db.call("requeueing a message", move |tx| queries::release(tx, id, &token, now)).await?;
        self.shared.published.notify_waiters();
        Ok(())
    }

    async fn reject(&self, reason: &str) -> BrokerResult<()> {
        let (id, token, now, reason) = (self.id, self.token.clone(), self.shared.now_ms(), reason.to_owned());
        self.shared
            .db
            .call("dead-lettering a message", move |tx| queries::bury(tx, id, &token, &reason, now).map(drop))
            .await
    }

    async fn ack_failed(&self, failure: &FailedTask) -> BrokerResult<()> {
        let entry = serde_json::to_string(failure).map_err(|e| {
            artel_core::BrokerError::new(artel_core::BrokerErrorKind::Other, "encoding a failure").with_source(e)
        })?;
        let (id, token, task) = (self.id, self.token.clone(), failure.task.clone());
        let (failed_at, keep) = (failure.failed_at_ms, self.shared.config.failed_kept);
        let held = self
            .shared
            .db
            .call("recording a failed task", move |tx| {
                let failure = queries::Failure { id, token: &token, task: &task, failed_at, entry: &entry, keep };
                queries::fail(tx, &failure)
            })
            .await?;
        lapsed_unless(held, id);
        Ok(())
    }

    fn release(&self) {
        let (id, token, now) = (self.id, self.token.clone(), self.shared.now_ms());
        self.shared.db.spawn("releasing a message", move |tx| queries::release(tx, id, &token, now));
        self.shared.published.notify_waiters();
    }
}
