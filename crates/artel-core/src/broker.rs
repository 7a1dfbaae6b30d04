//! The seams every backend implements: [`Broker`], [`Consumer`] and [`ResultBackend`].
//!
//! Brokers are batch-first (`publish` takes a slice) so network backends can pipeline.
//! A [`Delivery`] that is dropped without a decision goes back to its queue: nothing
//! unacknowledged is ever lost.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, BrokerErrorKind};
use crate::message::Message;
use crate::queues::Queues;
use crate::result::TaskResult;
use crate::time::Timestamp;

/// Short alias used by all broker operations.
pub type BrokerResult<T> = Result<T, BrokerError>;

/// A message queue: publish, consume, inspect.
#[async_trait]
pub trait Broker: Send + Sync + fmt::Debug {
    /// Publishes messages to `queue`; delayed ones (with an `eta`) are held by the broker until due.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping the future may publish a prefix of `messages`.
    async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()>;

    /// Starts consuming `queues`, earlier queues first when several have ready messages.
    async fn consume(&self, queues: &Queues, prefetch: usize) -> BrokerResult<Box<dyn Consumer>>;

    /// Messages ready to run in `queue` (not counting delayed or in-flight ones).
    async fn len(&self, queue: &str) -> BrokerResult<u64>;

    /// Deletes every ready message of `queue`; returns how many.
    async fn purge(&self, queue: &str) -> BrokerResult<u64>;

    /// The identity of the connection this broker shares with its own result backend, if
    /// it is one: a worker whose backend reports the same identity stores each result and
    /// acknowledges its message in one step ([`Acknowledge::ack_with_result`]).
    fn store_identity(&self) -> Option<usize> {
        None
    }
}

/// A stream of deliveries from one `consume` call.
#[async_trait]
pub trait Consumer: Send + fmt::Debug {
    /// Waits for the next message.
    ///
    /// # Cancel safety
    /// Cancel safe: a dropped call takes no message off the queue.
    async fn next(&mut self) -> BrokerResult<Delivery>;

    /// Hands the duty of keeping this consumer's leases alive to the caller, who must
    /// call [`Heartbeat::beat`] every [`Heartbeat::every`] (a worker runs it as a
    /// supervised component). `None` when the consumer holds no leases or its heartbeat
    /// already runs; a consumer whose heartbeat is not taken before its first `next`
    /// runs its own.
    fn take_heartbeat(&mut self) -> Option<Arc<dyn Heartbeat>> {
        None
    }
}

/// Keeps a consumer's held messages from being delivered to others.
#[async_trait]
pub trait Heartbeat: Send + Sync + fmt::Debug {
    /// How often to beat.
    fn every(&self) -> Duration;

    /// Extends the leases of every message the consumer holds.
    async fn beat(&self) -> BrokerResult<()>;
}

/// What happens to a delivered message; implemented by each broker.
#[async_trait]
pub trait Acknowledge: Send + Sync + fmt::Debug {
    /// Done with it: remove it for good.
    async fn ack(&self) -> BrokerResult<()>;
    /// Put it back to be delivered again.
    async fn requeue(&self) -> BrokerResult<()>;
    /// Move it to the dead-letter place with `reason`.
    async fn reject(&self, reason: &str) -> BrokerResult<()>;
    /// Called when the delivery is dropped undecided: must put the message back.
    fn release(&self);

    /// Done with a task that failed for good: remove it, and record `failure` (with the
    /// message, so it can run again) where the broker keeps failures ([`crate::FailedTasks`]).
    async fn ack_failed(&self, _failure: &crate::FailedTask) -> BrokerResult<()> {
        self.ack().await
    }

    /// Stores `result` and acknowledges in one step, for brokers that are also the
    /// result backend; `Ok(None)` when this broker cannot (store, then ack, instead).
    /// `Some(written)` says whether the result was written (false: a final one was kept).
    async fn ack_with_result(&self, _result: &TaskResult, _ttl: Option<Duration>) -> BrokerResult<Option<bool>> {
        Ok(None)
    }
}

/// A message handed to a consumer, with the means to settle it exactly once.
#[derive(Debug)]
pub struct Delivery {
    message: Message,
    acker: Option<Box<dyn Acknowledge>>,
    release_on_drop: bool,
    deliveries: u32,
}

impl Delivery {
    /// Wraps a message with its broker's acknowledger.
    pub fn new(message: Message, acker: Box<dyn Acknowledge>) -> Self {
        Self { message, acker: Some(acker), release_on_drop: true, deliveries: 0 }
    }

    /// Says how many times the message has been delivered, this time included, not
    /// counting deliveries that were handed back (requeued or released): a count past
    /// one means earlier deliveries ended with their worker.
    pub fn with_deliveries(mut self, deliveries: u32) -> Self {
        self.deliveries = deliveries;
        self
    }

    /// How many times the message has been delivered without being handed back, this
    /// time included; 0 when the broker does not count.
    pub fn deliveries(&self) -> u32 {
        self.deliveries
    }

    /// Dropping this delivery undecided will leave the message held until its lease
    /// lapses (or its consumer's connection closes) instead of handing it back at once:
    /// for a run that may still be going on when its worker exits.
    pub fn keep_on_drop(&mut self) {
        self.release_on_drop = false;
    }

    /// The delivered message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// Acknowledges the message.
    pub async fn ack(mut self) -> BrokerResult<()> {
        match self.acker.take() {
            Some(acker) => acker.ack().await,
            None => Ok(()),
        }
    }

    /// Acknowledges a task that failed for good, recording the failure where the broker
    /// keeps them.
    pub async fn ack_failed(mut self, failure: &crate::FailedTask) -> BrokerResult<()> {
        match self.acker.take() {
            Some(acker) => acker.ack_failed(failure).await,
            None => Ok(()),
        }
    }

    /// Returns the message to its queue.
    pub async fn requeue(mut self) -> BrokerResult<()> {
        match self.acker.take() {
            Some(acker) => acker.requeue().await,
            None => Ok(()),
        }
    }

    /// Stores the result and acknowledges in one step where the broker can; gives the
    /// delivery back (`Ok(Some)`) when it cannot, so the caller stores and acks itself.
    pub async fn ack_with_result(mut self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<Option<Self>> {
        let Some(acker) = self.acker.take() else { return Ok(None) };
        match acker.ack_with_result(result, ttl).await {
            Ok(Some(_)) => Ok(None),
            Ok(None) => {
                self.acker = Some(acker);
                Ok(Some(self))
            }
            Err(e) => {
                // Unsettled: put the message back rather than lose it.
                acker.release();
                Err(e)
            }
        }
    }

    /// Dead-letters the message with a reason.
    pub async fn reject(mut self, reason: &str) -> BrokerResult<()> {
        match self.acker.take() {
            Some(acker) => acker.reject(reason).await,
            None => Ok(()),
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(acker) = self.acker.take().filter(|_| self.release_on_drop) {
            acker.release();
        }
    }
}

/// Optional capability: seeing what a queue still owes, for draining and burst workers.
#[async_trait]
pub trait Inspect: Send + Sync + fmt::Debug {
    /// Messages of `queue` not yet acknowledged — ready, delayed or held by a consumer —
    /// counting at most `up_to` (so `unfinished(q, 1) == 0` is a cheap emptiness check).
    async fn unfinished(&self, queue: &str, up_to: u64) -> BrokerResult<u64>;
}

/// Where task results are stored and waited for.
#[async_trait]
pub trait ResultBackend: Send + Sync + fmt::Debug {
    /// The identity of the connection this backend shares with a broker, if it is one
    /// (see [`Broker::store_identity`]).
    fn store_identity(&self) -> Option<usize> {
        None
    }

    /// Stores `result` unless the stored state may not move to it (see
    /// [`crate::State::can_transition_to`]); returns whether it was written.
    async fn store(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<bool>;

    /// The stored result, if any (none reads as PENDING).
    async fn get(&self, task_id: &str) -> BrokerResult<Option<TaskResult>>;

    /// Waits until the task is ready or `timeout` passes (then a `Timeout` error).
    ///
    /// # Cancel safety
    /// Cancel safe.
    async fn wait(&self, task_id: &str, timeout: Duration) -> BrokerResult<TaskResult>;

    /// Records, before a chord's members are published, how many there are; for backends
    /// that keep the size themselves (Celery's `G.s` key). Others read it from the body.
    async fn prepare_chord(&self, _group_id: &str, _size: u32, _ttl: Option<Duration>) -> BrokerResult<()> {
        Ok(())
    }

    /// Records the outcome of member `index` of chord `group_id` (of `size` members, or as
    /// many as `prepare_chord` said when the body does not carry its size) and, when every
    /// member is in, returns their results in member order.
    ///
    /// Recording a member twice (a redelivered message) overwrites it, so the set counts
    /// each member once; whoever records while the set is complete gets the results, so a
    /// worker that died before calling the chord's body leaves it to the redelivery.
    async fn chord_part(
        &self,
        group_id: &str,
        index: u32,
        size: Option<u32>,
        result: &TaskResult,
        ttl: Option<Duration>,
    ) -> BrokerResult<Option<Vec<TaskResult>>>;

    /// Saves which tasks make up group `group_id` (Celery's `GroupResult.save()`), so the
    /// group can be read back by its id alone. Stored as a result under `group:<id>`
    /// unless the backend has a format of its own (Celery's `celery-taskset-meta-<id>`).
    async fn save_group(&self, group_id: &str, task_ids: &[String], ttl: Option<Duration>) -> BrokerResult<()> {
        let key = format!("group:{group_id}");
        let saved = TaskResult::success(&key, serde_json::json!(task_ids), chrono::Utc::now().fixed_offset());
        self.store(&saved, ttl).await.map(drop)
    }

    /// The task ids of a saved group, if it was saved (and has not expired).
    async fn restore_group(&self, group_id: &str) -> BrokerResult<Option<Vec<String>>> {
        let Some(saved) = self.get(&format!("group:{group_id}")).await? else { return Ok(None) };
        serde_json::from_value(saved.result).map(Some).map_err(|e| {
            BrokerError::new(BrokerErrorKind::Corrupt, format!("saved group {group_id} is not a list of ids"))
                .with_source(e)
        })
    }

    /// Records that a task must not run (and, with `terminate`, must stop if running).
    async fn revoke(&self, revocation: &Revocation) -> BrokerResult<()>;

    /// Revocations recorded after `cursor` (0: all), with the cursor to ask from next;
    /// workers poll this to keep their revoked set current.
    async fn revocations(&self, cursor: u64) -> BrokerResult<(Vec<Revocation>, u64)>;
}

/// The error of a backend asked to count a chord whose size it was never told.
pub fn unknown_chord_size(group_id: &str) -> BrokerError {
    BrokerError::new(
        BrokerErrorKind::Unsupported,
        format!(
            "chord {group_id}: the body does not say how many members it has (send it with artel, or use a Celery result backend)"
        ),
    )
}

/// A request that a task not run, kept until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revocation {
    /// The task to stop.
    pub task_id: String,
    /// Also stop it if it is running (Celery's `terminate=True`).
    pub terminate: bool,
    /// When workers may forget it (by then the message has expired or been discarded).
    pub expires_at: Timestamp,
}
