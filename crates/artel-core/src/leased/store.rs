//! [`LeaseStore`]: the storage verbs a leasing broker implements for [`super::LeasedConsumer`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::FailedTask;
use crate::broker::BrokerResult;
use crate::message::Message;
use crate::queues::Queues;
use crate::result::TaskResult;

/// A message a store handed to a holder.
#[derive(Debug)]
pub struct Claimed<Id> {
    /// Where the store finds it again to settle it.
    pub id: Id,
    /// Its envelope, as published.
    pub envelope: Vec<u8>,
    /// Deliveries not handed back, this one included.
    pub deliveries: u32,
}

/// What one claim took.
#[derive(Debug)]
pub struct Claim<Id> {
    /// The messages now held, in queue order.
    pub messages: Vec<Claimed<Id>>,
    /// When nothing was ready: how long until a delayed or leased message becomes visible.
    pub next_visible: Option<Duration>,
}

/// What [`LeaseStore::ack_with_result`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The result was written (false: a final one was kept).
    pub written: bool,
    /// The message was still held by this holder when it was acknowledged.
    pub held: bool,
}

/// Storage verbs of a broker that leases messages: every write after `claim` names the
/// holder and must leave a message alone that the holder no longer holds.
#[async_trait]
pub trait LeaseStore: Send + Sync + fmt::Debug + 'static {
    /// A held message's address in this store. Equal ids are one message, whatever
    /// [`LeaseStore::address`] adds to them.
    type Id: Clone + Eq + std::hash::Hash + Send + Sync + fmt::Debug + 'static;
    /// Per-consumer state for waiting (a connection of its own, a seen counter).
    type Waiter: Send + 'static;

    /// How often a holder's leases are extended (a few times per lease period).
    fn heartbeat_every(&self) -> Duration;

    /// Whether the store keeps delayed messages until due; if not, the consumer holds
    /// claimed messages whose ETA is ahead and hands them out when due.
    fn holds_delayed(&self) -> bool {
        true
    }

    /// Completes a claimed message's id from the decoded message, for stores that hand
    /// messages back by their queue and priority.
    fn address(&self, id: Self::Id, _message: &Message) -> Self::Id {
        id
    }

    /// Prepares one consumer's waiting.
    async fn waiter(&self, queues: &Queues) -> BrokerResult<Self::Waiter>;

    /// Takes up to `limit` ready messages from `queues`, earlier queues first, for `holder`.
    async fn claim(&self, queues: &Queues, holder: &str, limit: usize) -> BrokerResult<Claim<Self::Id>>;

    /// Waits until work may be ready: a publish seen by `waiter`, `due_in` passing, or the
    /// store's own polling interval.
    ///
    /// # Cancel safety
    /// Cancel safe.
    async fn wait_for_work(&self, waiter: &mut Self::Waiter, due_in: Option<Duration>) -> BrokerResult<()>;

    /// Extends the leases of `held` (all of `holder`'s messages).
    async fn extend(&self, holder: &str, held: &[Self::Id]) -> BrokerResult<()>;

    /// Removes the message; false when `holder` no longer held it.
    async fn ack(&self, holder: &str, id: &Self::Id) -> BrokerResult<bool>;

    /// Removes the message and records `failure` where the broker keeps failed tasks;
    /// false when `holder` no longer held it.
    async fn ack_failed(&self, holder: &str, id: &Self::Id, failure: &FailedTask) -> BrokerResult<bool>;

    /// Stores `result` and removes the message in one step, where the store is also the
    /// result backend; `None` when it cannot.
    async fn ack_with_result(
        &self,
        _holder: &str,
        _id: &Self::Id,
        _result: &TaskResult,
        _ttl: Option<Duration>,
    ) -> BrokerResult<Option<Stored>> {
        Ok(None)
    }

    /// Hands the message back to be delivered again, next in line.
    async fn release(&self, holder: &str, id: &Self::Id) -> BrokerResult<()>;

    /// Puts the message back to be delivered again (a requeue); [`LeaseStore::release`]
    /// unless the store queues the two differently.
    async fn requeue(&self, holder: &str, id: &Self::Id) -> BrokerResult<()> {
        self.release(holder, id).await
    }

    /// Moves the message to the dead letters with `reason`.
    async fn bury(&self, holder: &str, id: &Self::Id, reason: &str) -> BrokerResult<()>;
}
