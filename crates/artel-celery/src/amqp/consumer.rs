//! Consuming with manual acks: deliveries of every queue merged into one stream, ETA
//! messages held (unacknowledged) until due.

use artel_core::{
    Acknowledge, BrokerError, BrokerErrorKind, BrokerResult, Consumer, Delivery, HeldTask, Holdings, Message, lock,
};
use async_trait::async_trait;
use futures_core::Stream;
use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::deliveries::DeliveryCounts;
use super::message::{Arrival, to_message};
use super::{Amqp, amqp_error};
use artel_core::leased::Waiting;
use artel_core::time::now_ms;

/// The prefetch applies to the whole channel and changes at once (Celery sets it so on
/// RabbitMQ); a per-consumer prefetch would only apply to consumers started later.
const GLOBAL_QOS: BasicQosOptions = BasicQosOptions { global: true };

/// Closes a consumer's channel, which hands every unacknowledged message on it back to
/// RabbitMQ, once neither the consumer nor any of its unsettled deliveries needs it: a
/// run the worker could not stop keeps its message held until it ends (or the process
/// exits and the connection closes), so it never runs twice at once.
#[derive(Debug)]
struct ChannelCloser(Channel);

/// ETA messages a consumer holds (unacknowledged) until due.
type Held = Waiting<(Message, lapin::acker::Acker, u32)>;

/// A message RabbitMQ delivered, read off the channel as it came, with its decoding.
type Received = (Message, lapin::message::Delivery);

/// What RabbitMQ sent ahead (within the prefetch) and the consumer has not handed out
/// yet, by delivery tag: the readers add each message as it arrives, `next` removes it.
type Arrived = Arc<Mutex<Vec<(u64, HeldTask)>>>;

/// [`Holdings`] of an [`AmqpConsumer`]: what RabbitMQ prefetched, due now (reserved) or
/// later (scheduled, with the ETA messages held).
#[derive(Debug)]
struct HeldView {
    arrived: Arrived,
    held: Arc<Mutex<Held>>,
    prefetch: Prefetch,
}

/// A consumer's prefetch, as remote control may change it, and the channel it applies to.
#[derive(Debug, Clone)]
struct Prefetch {
    channel: Channel,
    count: Arc<AtomicUsize>,
}

impl Prefetch {
    /// Tells RabbitMQ the prefetch plus one for each of `held` ETA messages, which must
    /// never use it up (Celery does the same).
    async fn apply(&self, held: usize) {
        let count = u16::try_from(self.count.load(Ordering::Relaxed) + held).unwrap_or(u16::MAX);
        if let Err(e) = self.channel.basic_qos(count, GLOBAL_QOS).await {
            tracing::warn!(error = %e, "could not change the prefetch");
        }
    }
}

impl HeldView {
    /// What arrived, due now (`later` false) or later.
    fn arrived(&self, later: bool) -> Vec<HeldTask> {
        let now = now_ms();
        let arrived = lock(&self.arrived);
        let due_later = |task: &HeldTask| task.eta.is_some_and(|eta| eta.timestamp_millis() > now);
        arrived.iter().filter(|(_, task)| due_later(task) == later).map(|(_, task)| task.clone()).collect()
    }
}

impl Holdings for HeldView {
    fn reserved(&self) -> Vec<HeldTask> {
        self.arrived(false)
    }

    fn scheduled(&self) -> Vec<HeldTask> {
        let mut scheduled: Vec<HeldTask> =
            lock(&self.held).iter().map(|(message, _, _)| HeldTask::of(message)).collect();
        scheduled.extend(self.arrived(true));
        scheduled
    }

    fn resize_prefetch(&self, delta: i64) {
        let resized = |n: usize| usize::try_from(i64::try_from(n).unwrap_or(i64::MAX).saturating_add(delta)).ok();
        let _ =
            self.prefetch.count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| resized(n).map(|n| n.max(1)));
        let (prefetch, held) = (self.prefetch.clone(), lock(&self.held).len());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { prefetch.apply(held).await });
        }
    }
}

impl Drop for ChannelCloser {
    fn drop(&mut self) {
        let channel = self.0.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = channel.close(200, "consumer stopped").await;
            });
        }
    }
}

pub(crate) struct AmqpConsumer {
    broker: Amqp,
    channel: Channel,
    closer: Arc<ChannelCloser>,
    tags: Vec<String>,
    prefetch: Prefetch,
    inbox: mpsc::Receiver<BrokerResult<Received>>,
    /// Received and not handed out yet (what `inbox` holds), to list.
    arrived: Arrived,
    /// ETA messages, held (unacknowledged) until due.
    held: Arc<Mutex<Held>>,
    readers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for AmqpConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConsumer").field("held", &lock(&self.held).len()).finish()
    }
}

impl AmqpConsumer {
    pub(crate) async fn start(broker: Amqp, queues: &[String], prefetch: usize) -> BrokerResult<Self> {
        let channel =
            broker.shared.connection.create_channel().await.map_err(|e| amqp_error("opening a channel", e))?;
        let prefetch = u16::try_from(prefetch.max(1)).unwrap_or(u16::MAX);
        channel.basic_qos(prefetch, GLOBAL_QOS).await.map_err(|e| amqp_error("setting the prefetch", e))?;
        let (sender, inbox) = mpsc::channel(usize::from(prefetch).max(16));
        let (mut readers, mut tags, arrived) = (Vec::new(), Vec::new(), Arrived::default());
        for queue in queues {
            broker.declare(&channel, queue).await?;
            let tag = format!("artel-{}", uuid::Uuid::new_v4());
            let what = format!("consuming queue {queue}");
            let consumer = channel
                .basic_consume(queue, &tag, BasicConsumeOptions::default(), FieldTable::default())
                .await
                .map_err(|e| amqp_error(&what, e))?;
            readers.push(tokio::spawn(forward(consumer, sender.clone(), arrived.clone())));
            tags.push(tag);
        }
        let closer = Arc::new(ChannelCloser(channel.clone()));
        let prefetch = Prefetch { channel: channel.clone(), count: Arc::new(AtomicUsize::new(usize::from(prefetch))) };
        Ok(Self { broker, channel, closer, tags, prefetch, inbox, arrived, held: Arc::default(), readers })
    }

    /// Lets one more message in for each one held, as Celery does, so held ETA messages
    /// never use up the prefetch.
    async fn adjust_prefetch(&self) {
        let held = lock(&self.held).len();
        self.prefetch.apply(held).await;
    }

    fn deliver(&self, message: Message, acker: lapin::acker::Acker, deliveries: u32) -> Delivery {
        let settle = Acker {
            broker: self.broker.clone(),
            acker,
            message: message.clone(),
            redelivered: deliveries > 1,
            _channel: self.closer.clone(),
        };
        Delivery::new(message, Box::new(settle)).with_deliveries(deliveries)
    }

    /// How many times `received` has been delivered without being handed back, this time
    /// included (0 when deliveries are not counted).
    async fn deliveries(&self, received: &lapin::message::Delivery, task_id: &str) -> u32 {
        match (&self.broker.counts, received.redelivered) {
            (None, _) => 0,
            (Some(_), false) => 1,
            (Some(counts), true) => counts.redelivered(task_id).await,
        }
    }
}

/// Reads what RabbitMQ sends on `consumer` into `sender` as it comes, listing each
/// message in `arrived` until the consumer hands it out.
async fn forward(mut consumer: lapin::Consumer, sender: mpsc::Sender<BrokerResult<Received>>, arrived: Arrived) {
    loop {
        let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut consumer).poll_next(cx)).await;
        let item = match next {
            Some(Ok(delivery)) => {
                let message = delivered_message(&delivery);
                lock(&arrived).push((delivery.delivery_tag, HeldTask::of(&message)));
                Ok((message, delivery))
            }
            Some(Err(e)) => Err(amqp_error("receiving a message", e)),
            None => Err(BrokerError::new(BrokerErrorKind::Closed, "RabbitMQ cancelled the consumer")),
        };
        let stop = item.is_err();
        if sender.send(item).await.is_err() || stop {
            return;
        }
    }
}

fn delivered_message(received: &lapin::message::Delivery) -> Message {
    to_message(&received.properties, Arrival::of(received), received.data.clone())
}

#[async_trait]
impl Consumer for AmqpConsumer {
    async fn next(&mut self) -> BrokerResult<Delivery> {
        loop {
            let due = lock(&self.held).pop_due();
            if let Some((message, acker, deliveries)) = due {
                self.adjust_prefetch().await;
                return Ok(self.deliver(message, acker, deliveries));
            }
            let wait = lock(&self.held).next_in().unwrap_or(std::time::Duration::from_secs(3600));
            let received = match tokio::time::timeout(wait, self.inbox.recv()).await {
                Err(_) => continue,
                Ok(None) => return Err(BrokerError::new(BrokerErrorKind::Closed, "the AMQP consumer stopped")),
                Ok(Some(received)) => received?,
            };
            let (message, received) = received;
            lock(&self.arrived).retain(|(tag, _)| *tag != received.delivery_tag);
            let deliveries = self.deliveries(&received, &message.headers.id).await;
            match message.headers.eta.map(|eta| eta.timestamp_millis()) {
                Some(due) if due > now_ms() => {
                    lock(&self.held).hold(due, (message, received.acker, deliveries));
                    self.adjust_prefetch().await;
                }
                _ => return Ok(self.deliver(message, received.acker, deliveries)),
            }
        }
    }

    fn holdings(&self) -> Option<Arc<dyn Holdings>> {
        let (arrived, held, prefetch) = (self.arrived.clone(), self.held.clone(), self.prefetch.clone());
        Some(Arc::new(HeldView { arrived, held, prefetch }))
    }
}

impl Drop for AmqpConsumer {
    fn drop(&mut self) {
        // What arrived goes back below; the worker holds it no more.
        lock(&self.arrived).clear();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime left: the process is going; its connection's end hands all back.
            return self.readers.iter().for_each(JoinHandle::abort);
        };
        // Stop RabbitMQ's deliveries first, then hand back what was received but not
        // delivered (the readers end once their consumer is cancelled). The channel may
        // stay open for a delivery still running, so this is done message by message.
        let (_, closed) = mpsc::channel(1);
        let mut inbox = std::mem::replace(&mut self.inbox, closed);
        let held: Vec<(Message, lapin::acker::Acker, u32)> = lock(&self.held).drain().collect();
        let (channel, tags, closer) = (self.channel.clone(), std::mem::take(&mut self.tags), self.closer.clone());
        let counts = self.broker.counts.clone();
        runtime.spawn(async move {
            for tag in &tags {
                let _ = channel.basic_cancel(tag, BasicCancelOptions::default()).await;
            }
            let requeue = BasicNackOptions { requeue: true, ..BasicNackOptions::default() };
            // Handed back, not lost: no delivery is counted for them. Held ETA messages
            // were counted when received; the inbox's were not, and a redelivered one then
            // needs nothing, while a first delivery offsets the redelivery RabbitMQ will
            // report for it.
            for (message, acker, _) in held {
                Acker::handed_back(counts.as_ref(), &message.headers.id).await;
                let _ = acker.nack(requeue).await;
            }
            while let Ok(Some(received)) = tokio::time::timeout(HAND_BACK, inbox.recv()).await {
                let Ok((message, received)) = received else { continue };
                if !received.redelivered {
                    Acker::handed_back(counts.as_ref(), &message.headers.id).await;
                }
                let _ = received.acker.nack(requeue).await;
            }
            // The channel closes when the last unsettled delivery is done with it.
            drop(closer);
        });
    }
}

/// How long a stopping consumer waits for its readers to hand over what RabbitMQ had
/// already sent; whatever is left returns when the channel closes.
const HAND_BACK: std::time::Duration = std::time::Duration::from_secs(2);

/// Settles one delivery; keeps the message to dead-letter it.
#[derive(Debug)]
struct Acker {
    broker: Amqp,
    acker: lapin::acker::Acker,
    message: Message,
    /// Counted as a redelivery: its count is forgotten once it is settled.
    redelivered: bool,
    /// Keeps the channel open while this delivery is unsettled.
    _channel: Arc<ChannelCloser>,
}

impl Acker {
    async fn handed_back(counts: Option<&DeliveryCounts>, task_id: &str) {
        if let Some(counts) = counts {
            counts.handed_back(task_id).await;
        }
    }

    fn settled(&self) {
        if let (true, Some(counts)) = (self.redelivered, &self.broker.counts) {
            counts.settled(&self.message.headers.id);
        }
    }
}

#[async_trait]
impl Acknowledge for Acker {
    async fn ack(&self) -> BrokerResult<()> {
        self.acker.ack(BasicAckOptions::default()).await.map_err(|e| amqp_error("acknowledging", e))?;
        self.settled();
        Ok(())
    }

    async fn requeue(&self) -> BrokerResult<()> {
        Self::handed_back(self.broker.counts.as_ref(), &self.message.headers.id).await;
        let requeue = BasicNackOptions { requeue: true, ..BasicNackOptions::default() };
        self.acker.nack(requeue).await.map(drop).map_err(|e| amqp_error("requeueing", e))
    }

    /// RabbitMQ would drop a rejected message: keep it in the dead queue (`artel.dead`)
    /// with the reason.
    async fn reject(&self, reason: &str) -> BrokerResult<()> {
        let (channel, dead) = (&self.broker.shared.publisher, self.broker.dead_queue());
        self.broker.declare(channel, dead).await?;
        self.broker.publish_one(dead, &self.message, Some(("x-artel-reason", reason))).await?;
        self.ack().await
    }

    fn release(&self) {
        let (acker, counts, task_id) =
            (self.acker.clone(), self.broker.counts.clone(), self.message.headers.id.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                Self::handed_back(counts.as_ref(), &task_id).await;
                let requeue = BasicNackOptions { requeue: true, ..BasicNackOptions::default() };
                if let Err(e) = acker.nack(requeue).await {
                    tracing::warn!(error = %e, "could not hand a message back; RabbitMQ returns it when the channel closes");
                }
            });
        }
    }
}
