//! One consumer for every broker that leases messages to a holder: [`LeasedConsumer`]
//! owns prefetch, the holder token, the heartbeat, burying undecodable messages, handing
//! back on drop and waiting; a broker implements only the storage verbs of [`LeaseStore`].
//!
//! Invariants:
//! * every claimed message is, at each moment, in exactly one place: this consumer's
//!   buffer (handed back when it drops), a [`Delivery`] (settled, or handed back when it
//!   drops), or the dead letters (it could not be decoded);
//! * every write after the claim names the holder token, so a holder whose lease lapsed
//!   cannot settle a message another holder has since claimed;
//! * while a message is held its lease is extended a few times per lease period, by this
//!   consumer or, once [`Consumer::take_heartbeat`] was called, by whoever took it;
//! * the buffer never holds more than `prefetch` messages: a claim asks for what is
//!   missing. When the last claim found a backlog, the next starts once half the buffer
//!   is handed out (never when it is empty: a consumer not asking claims nothing), so its
//!   round trip overlaps the work instead of stalling it; its messages count as held
//!   (and are kept alive) from the moment the claim returns.

mod gather;
mod store;
mod waiting;

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinHandle;

use crate::broker::{Acknowledge, BrokerResult, Consumer, Delivery, Heartbeat, HeldTask, Holdings};
use crate::message::Message;
use crate::queues::Queues;
use crate::result::TaskResult;
use crate::{FailedTask, lock};

pub use gather::{Gather, Gathered};
pub use store::{Claim, Claimed, LeaseStore, Stored};
pub use waiting::Waiting;

/// Waits for a publish that `published` (a counter the store bumps) announces, `due_in`
/// passing, or `poll`, whichever comes first: the wait of stores that learn of publishes
/// in-process or by notification, and poll for the rest.
///
/// # Cancel safety
/// Cancel safe.
pub async fn wait_for_publish(
    published: &mut tokio::sync::watch::Receiver<u64>,
    due_in: Option<std::time::Duration>,
    poll: std::time::Duration,
) {
    if tokio::time::timeout(due_in.map_or(poll, |d| d.min(poll)), published.changed()).await.is_ok() {
        published.mark_unchanged();
    }
}

/// The ids a consumer holds (buffered, waiting for their ETA or delivered), for the heartbeat.
type Held<Id> = Arc<Mutex<HashSet<Id>>>;

/// A claim running in the background, with how many it asked for.
type Ahead<Id> = (usize, JoinHandle<BrokerResult<Claim<Id>>>);

/// A decoded message with its id and delivery count, not yet handed out.
/// Boxed: the buffer keeps its capacity after a large claim, and a message inline made
/// each slot about 900 bytes.
type Ready<Id> = (Box<Message>, Id, u32);

/// What a consumer claimed and has not handed out.
struct Pending<Id> {
    /// Ready, in claim order.
    buffer: VecDeque<Ready<Id>>,
    /// With an ETA still ahead, for stores that do not hold delayed messages.
    delayed: Waiting<Ready<Id>>,
}

/// [`Holdings`] of a [`LeasedConsumer`].
struct PendingView<Id>(Arc<Mutex<Pending<Id>>>);

impl<Id: Send> Holdings for PendingView<Id> {
    fn reserved(&self) -> Vec<HeldTask> {
        lock(&self.0).buffer.iter().map(|(message, _, _)| HeldTask::of(message)).collect()
    }

    fn scheduled(&self) -> Vec<HeldTask> {
        lock(&self.0).delayed.iter().map(|(message, _, _)| HeldTask::of(message)).collect()
    }
}

impl<Id> fmt::Debug for PendingView<Id> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingView")
    }
}

/// Who keeps the leases alive.
#[derive(Debug)]
enum Duty<S: LeaseStore> {
    /// Nobody yet: the consumer starts its own heartbeat on its first `next`.
    Unclaimed(Arc<Keeper<S>>),
    /// The consumer's own heartbeat task.
    Own(JoinHandle<()>),
    /// Handed to a caller (a worker runs it as a supervised component).
    Taken,
}

/// The generic consumer; see the module docs.
pub struct LeasedConsumer<S: LeaseStore> {
    store: Arc<S>,
    queues: Queues,
    prefetch: usize,
    holder: Arc<str>,
    held: Held<S::Id>,
    /// Claimed, not yet handed out; shared only with [`Consumer::holdings`]' readers.
    pending: Arc<Mutex<Pending<S::Id>>>,
    waiter: S::Waiter,
    duty: Duty<S>,
    /// A claim started before the buffer ran dry.
    ahead: Option<Ahead<S::Id>>,
    /// The last claim took all it asked for: more is likely waiting.
    backlog: bool,
}

impl<S: LeaseStore> LeasedConsumer<S> {
    /// A new holder of `store`'s messages in `queues`, claiming up to `prefetch` at a time.
    pub async fn open(store: Arc<S>, queues: Queues, prefetch: usize) -> BrokerResult<Self> {
        let waiter = store.waiter(&queues).await?;
        let holder: Arc<str> = uuid::Uuid::new_v4().to_string().into();
        let held: Held<S::Id> = Arc::default();
        let keeper = Keeper { store: store.clone(), holder: holder.clone(), held: held.clone() };
        Ok(Self {
            store,
            queues,
            prefetch: prefetch.max(1),
            holder,
            held,
            pending: Arc::new(Mutex::new(Pending { buffer: VecDeque::new(), delayed: Waiting::default() })),
            waiter,
            duty: Duty::Unclaimed(Arc::new(keeper)),
            ahead: None,
            backlog: false,
        })
    }

    fn acker(&self, id: S::Id) -> LeaseAcker<S> {
        LeaseAcker { store: self.store.clone(), holder: self.holder.clone(), id, held: self.held.clone() }
    }

    /// Starts the next claim while at most half the buffer, but not none of it, is left,
    /// if the last claim found a backlog (see the module docs). An empty buffer waits for
    /// the next `next`: a consumer that stopped asking claims nothing more.
    fn claim_ahead(&mut self) {
        let left = lock(&self.pending).buffer.len();
        if !self.backlog || self.ahead.is_some() || left == 0 || left > self.prefetch / 2 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let limit = self.prefetch - left;
        let claiming = claim(self.store.clone(), self.queues.clone(), self.holder.clone(), self.held.clone(), limit);
        self.ahead = Some((limit, runtime.spawn(claiming)));
    }

    /// Takes the claim started ahead, or claims now; files what it took.
    ///
    /// # Cancel safety
    /// Cancel safe: a claim started ahead stays until awaited to its end, and a claim made
    /// here that is cancelled holds nothing (its leases lapse).
    async fn fill(&mut self) -> BrokerResult<Option<Duration>> {
        let (asked, claim) = match &mut self.ahead {
            Some((asked, running)) => {
                let claim = running.await.map_err(|e| {
                    crate::BrokerError::new(crate::BrokerErrorKind::Other, "claiming messages ahead").with_source(e)
                });
                let asked = *asked;
                self.ahead = None;
                (asked, claim??)
            }
            None => {
                let limit = self.prefetch - lock(&self.pending).buffer.len();
                let claiming =
                    claim(self.store.clone(), self.queues.clone(), self.holder.clone(), self.held.clone(), limit);
                (limit, claiming.await?)
            }
        };
        self.backlog = claim.messages.len() >= asked;
        let now = crate::time::now_ms();
        let (mut ready, mut rejected) = (Vec::with_capacity(claim.messages.len()), Vec::new());
        for claimed in claim.messages {
            match Message::from_envelope_or_salvage(&claimed.envelope) {
                Ok(message) => {
                    let id = self.store.address(claimed.id, &message);
                    ready.push((Box::new(message), id, claimed.deliveries));
                }
                Err(error) => rejected.push((claimed.id, format!("undecodable message: {error}"))),
            }
        }
        {
            let mut pending = lock(&self.pending);
            for ready in ready {
                match ready.0.headers.eta.map(|eta| eta.timestamp_millis()) {
                    Some(due) if due > now && !self.store.holds_delayed() => pending.delayed.hold(due, ready),
                    _ => pending.buffer.push_back(ready),
                }
            }
        }
        for (id, reason) in rejected {
            tracing::error!(?id, %reason, "message moved to dead letter");
            self.acker(id).reject(&reason).await?;
        }
        Ok(claim.next_visible)
    }

    fn deliver(&self, (message, id, deliveries): Ready<S::Id>) -> Delivery {
        Delivery::new(message, Box::new(self.acker(id))).with_deliveries(deliveries)
    }
}

#[async_trait]
impl<S: LeaseStore> Consumer for LeasedConsumer<S> {
    async fn next(&mut self) -> BrokerResult<Delivery> {
        if let Duty::Unclaimed(keeper) = &self.duty {
            self.duty = Duty::Own(tokio::spawn(keep_alive(keeper.clone())));
        }
        loop {
            let ready = {
                let mut pending = lock(&self.pending);
                pending.delayed.pop_due().or_else(|| pending.buffer.pop_front())
            };
            if let Some(ready) = ready {
                self.claim_ahead();
                return Ok(self.deliver(ready));
            }
            let next_visible = self.fill().await?;
            let (buffered, due) = {
                let pending = lock(&self.pending);
                (!pending.buffer.is_empty(), pending.delayed.next_in())
            };
            if buffered {
                continue;
            }
            let due_in = [next_visible, due].into_iter().flatten().min();
            if due_in.is_some_and(|d| d.is_zero()) {
                continue;
            }
            self.store.wait_for_work(&mut self.waiter, due_in).await?;
        }
    }

    fn take_heartbeat(&mut self) -> Option<Arc<dyn Heartbeat>> {
        match std::mem::replace(&mut self.duty, Duty::Taken) {
            Duty::Unclaimed(keeper) => Some(keeper),
            other => {
                self.duty = other;
                None
            }
        }
    }

    fn holdings(&self) -> Option<Arc<dyn Holdings>> {
        Some(Arc::new(PendingView(self.pending.clone())))
    }
}

impl<S: LeaseStore> Drop for LeasedConsumer<S> {
    fn drop(&mut self) {
        if let Duty::Own(heartbeat) = &self.duty {
            heartbeat.abort();
        }
        // Claimed, never started: hand them back now rather than after the lease. Delivered
        // ones are their deliveries' to settle.
        let undelivered: Vec<S::Id> = {
            let mut pending = lock(&self.pending);
            let Pending { buffer, delayed } = &mut *pending;
            buffer.drain(..).chain(delayed.drain()).map(|(_, id, _)| id).collect()
        };
        for id in undelivered {
            self.acker(id).release();
        }
        // So are those of a claim still running ahead, once it returns.
        if let (Some((_, running)), Ok(runtime)) = (self.ahead.take(), tokio::runtime::Handle::try_current()) {
            let (store, holder, held) = (self.store.clone(), self.holder.clone(), self.held.clone());
            runtime.spawn(async move {
                let Ok(Ok(claim)) = running.await else { return };
                for claimed in claim.messages {
                    let id = match Message::from_envelope_or_salvage(&claimed.envelope) {
                        Ok(message) => store.address(claimed.id, &message),
                        Err(_) => claimed.id,
                    };
                    LeaseAcker { store: store.clone(), holder: holder.clone(), id, held: held.clone() }.release();
                }
            });
        }
    }
}

/// Claims up to `limit` messages of `queues` for `holder` and counts them as held.
async fn claim<S: LeaseStore>(
    store: Arc<S>,
    queues: Queues,
    holder: Arc<str>,
    held: Held<S::Id>,
    limit: usize,
) -> BrokerResult<Claim<S::Id>> {
    let claim = store.claim(&queues, &holder, limit).await?;
    lock(&held).extend(claim.messages.iter().map(|c| c.id.clone()));
    Ok(claim)
}

impl<S: LeaseStore> fmt::Debug for LeasedConsumer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeasedConsumer")
            .field("store", &self.store)
            .field("queues", &self.queues)
            .field("buffered", &lock(&self.pending).buffer.len())
            .field("delayed", &lock(&self.pending).delayed.len())
            .finish()
    }
}

/// Extends the leases of everything a consumer holds.
#[derive(Debug)]
struct Keeper<S: LeaseStore> {
    store: Arc<S>,
    holder: Arc<str>,
    held: Held<S::Id>,
}

#[async_trait]
impl<S: LeaseStore> Heartbeat for Keeper<S> {
    fn every(&self) -> Duration {
        self.store.heartbeat_every()
    }

    async fn beat(&self) -> BrokerResult<()> {
        let held: Vec<S::Id> = lock(&self.held).iter().cloned().collect();
        self.store.extend(&self.holder, &held).await
    }
}

/// A consumer's own heartbeat, for consumers used without a worker.
async fn keep_alive(heartbeat: Arc<dyn Heartbeat>) {
    loop {
        if let Err(error) = heartbeat.beat().await {
            tracing::warn!(%error, "could not extend leases; held messages may be delivered again");
        }
        tokio::time::sleep(heartbeat.every()).await;
    }
}

/// Settles one claimed message through the store, as its holder.
#[derive(Debug)]
struct LeaseAcker<S: LeaseStore> {
    store: Arc<S>,
    holder: Arc<str>,
    id: S::Id,
    held: Held<S::Id>,
}

impl<S: LeaseStore> LeaseAcker<S> {
    /// No longer held by this consumer: the heartbeat leaves it alone.
    fn forget(&self) {
        lock(&self.held).remove(&self.id);
    }

    /// Warns when a settling write found the message no longer held by this holder.
    fn lapsed_unless(&self, held: bool) {
        if !held {
            tracing::warn!(id = ?self.id, "acked a message whose lease had lapsed; another worker may run it again");
        }
    }
}

#[async_trait]
impl<S: LeaseStore> Acknowledge for LeaseAcker<S> {
    async fn ack(&self) -> BrokerResult<()> {
        self.forget();
        let held = self.store.ack(&self.holder, &self.id).await?;
        self.lapsed_unless(held);
        Ok(())
    }

    async fn requeue(&self) -> BrokerResult<()> {
        self.forget();
        self.store.requeue(&self.holder, &self.id).await
    }

    async fn reject(&self, reason: &str) -> BrokerResult<()> {
        self.forget();
        self.store.bury(&self.holder, &self.id, reason).await
    }

    async fn ack_failed(&self, failure: &FailedTask) -> BrokerResult<()> {
        self.forget();
        let held = self.store.ack_failed(&self.holder, &self.id, failure).await?;
        self.lapsed_unless(held);
        Ok(())
    }

    async fn ack_with_result(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<Option<bool>> {
        let Some(stored) = self.store.ack_with_result(&self.holder, &self.id, result, ttl).await? else {
            return Ok(None);
        };
        self.forget();
        self.lapsed_unless(stored.held);
        Ok(Some(stored.written))
    }

    /// No longer kept alive by the heartbeat: the lease lapses and the message comes back
    /// with its delivery counted.
    fn abandon(&self) {
        self.forget();
    }

    fn release(&self) {
        self.forget();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(id = ?self.id, "released outside a runtime; the lease will lapse instead");
            return;
        };
        let (store, holder, id) = (self.store.clone(), self.holder.clone(), self.id.clone());
        runtime.spawn(async move {
            if let Err(error) = store.release(&holder, &id).await {
                tracing::warn!(%error, "could not release a message; its lease will lapse instead");
            }
        });
    }
}
