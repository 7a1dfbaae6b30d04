//! The seams every broker implements: [`Broker`], [`Consumer`] and [`Acknowledge`].
//!
//! Brokers are batch-first (`publish` takes a slice) so network backends can pipeline.
//! A [`Delivery`] that is dropped without a decision goes back to its queue: nothing
//! unacknowledged is ever lost.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::BrokerError;
use crate::message::Message;
use crate::queues::Queues;
use crate::result::TaskResult;

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

    /// A view of the messages this consumer received and has not handed out, readable
    /// while it runs (`inspect reserved` and `scheduled`); `None` when it cannot tell.
    fn holdings(&self) -> Option<Arc<dyn Holdings>> {
        None
    }
}

/// What a consumer holds and has not handed out yet.
pub trait Holdings: Send + Sync + fmt::Debug {
    /// Prefetched, ready to run.
    fn reserved(&self) -> Vec<HeldTask>;

    /// Waiting for their ETA.
    fn scheduled(&self) -> Vec<HeldTask>;

    /// Lets `delta` more (negative: fewer) messages be delivered ahead, where the broker
    /// counts running ones against the prefetch (RabbitMQ's QoS), so slots added by
    /// `pool_grow` get messages (Celery raises its prefetch so too). Others need nothing.
    fn resize_prefetch(&self, _delta: i64) {}
}

/// A message received and not started, as `inspect reserved`/`scheduled` list it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldTask {
    /// Task id.
    pub id: String,
    /// Task name.
    pub name: String,
    /// Printable positional arguments.
    pub args: String,
    /// Printable keyword arguments.
    pub kwargs: String,
    /// The routing key it was delivered with.
    pub routing_key: String,
    /// Its priority.
    pub priority: u8,
    /// When it is due, if it has an ETA.
    pub eta: Option<crate::time::Timestamp>,
}

impl HeldTask {
    /// What `message` shows of itself.
    pub fn of(message: &Message) -> Self {
        let headers = &message.headers;
        HeldTask {
            id: headers.id.clone(),
            name: headers.task.clone(),
            args: headers.argsrepr.clone().unwrap_or_default(),
            kwargs: headers.kwargsrepr.clone().unwrap_or_default(),
            routing_key: message.queue().to_owned(),
            priority: message.properties.priority,
            eta: headers.eta,
        }
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

    /// Gives the message up as a dead worker would: brokers that lease let the lease
    /// lapse, so it comes back later counted as a delivery (toward `max_deliveries`);
    /// others hand it back now.
    fn abandon(&self) {
        self.release();
    }

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
    /// Boxed: a delivery is moved through every future of a task's run, and the message
    /// inline made it 664 bytes each time.
    message: Box<Message>,
    acker: Option<Box<dyn Acknowledge>>,
    release_on_drop: bool,
    deliveries: u32,
}

impl Delivery {
    /// Wraps a message (boxed already, or not) with its broker's acknowledger.
    pub fn new(message: impl Into<Box<Message>>, acker: Box<dyn Acknowledge>) -> Self {
        Self { message: message.into(), acker: Some(acker), release_on_drop: true, deliveries: 0 }
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

    /// Gives the message up as a dead worker would (see [`Acknowledge::abandon`]).
    pub fn abandon(mut self) {
        if let Some(acker) = self.acker.take() {
            acker.abandon();
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
