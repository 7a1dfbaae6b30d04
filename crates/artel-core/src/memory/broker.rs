use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::broker::{Acknowledge, Broker, BrokerResult, Consumer, Delivery};
use crate::message::Message;
use crate::queues::Queues;
use crate::time::{Clock, SystemClock, Timestamp};

/// In-process broker; clones share the same queues.
#[derive(Debug, Clone)]
pub struct MemoryBroker {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queues: Mutex<HashMap<String, Queue>>,
    published: Notify,
    clock: Arc<dyn Clock>,
}

#[derive(Debug, Default)]
struct Queue {
    ready: BinaryHeap<Ready>,
    scheduled: BinaryHeap<Reverse<Scheduled>>,
    dead: Vec<(Message, String)>,
    seq: u64,
}

/// Higher priority first, then publish order.
#[derive(Debug)]
struct Ready {
    priority: u8,
    seq: Reverse<u64>,
    message: Message,
}

#[derive(Debug)]
struct Scheduled {
    eta: Timestamp,
    seq: u64,
    message: Message,
}

impl MemoryBroker {
    /// An empty broker on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty broker reading time from `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self { shared: Arc::new(Shared { queues: Mutex::default(), published: Notify::new(), clock }) }
    }

    /// Delayed messages of `queue` not yet due.
    pub fn scheduled_len(&self, queue: &str) -> u64 {
        self.shared.lock().get(queue).map_or(0, |q| q.scheduled.len() as u64)
    }

    /// Dead-lettered messages of `queue` with their reasons.
    pub fn dead(&self, queue: &str) -> Vec<(Message, String)> {
        self.shared.lock().get(queue).map(|q| q.dead.clone()).unwrap_or_default()
    }
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Queue>> {
        // A panic while holding this lock leaves consistent data: every update is one push/pop.
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push_ready(&self, queue: &str, message: Message) {
        self.lock().entry(queue.to_owned()).or_default().push_ready(message);
        self.published.notify_waiters();
    }
}

impl Queue {
    fn push_ready(&mut self, message: Message) {
        self.seq += 1;
        let priority = message.properties.priority.min(9);
        self.ready.push(Ready { priority, seq: Reverse(self.seq), message });
    }

    fn promote_due(&mut self, now: Timestamp) {
        while self.scheduled.peek().is_some_and(|Reverse(s)| s.eta <= now) {
            if let Some(Reverse(s)) = self.scheduled.pop() {
                self.push_ready(s.message);
            }
        }
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()> {
        let now = self.shared.clock.now();
        {
            let mut queues = self.shared.lock();
            let q = queues.entry(queue.to_owned()).or_default();
            for message in messages {
                match message.headers.eta {
                    Some(eta) if eta > now => {
                        q.seq += 1;
                        q.scheduled.push(Reverse(Scheduled { eta, seq: q.seq, message: message.clone() }));
                    }
                    _ => q.push_ready(message.clone()),
                }
            }
        }
        self.shared.published.notify_waiters();
        Ok(())
    }

    async fn consume(&self, queues: &Queues, _prefetch: usize) -> BrokerResult<Box<dyn Consumer>> {
        Ok(Box::new(MemoryConsumer { shared: self.shared.clone(), queues: queues.to_vec() }))
    }

    async fn len(&self, queue: &str) -> BrokerResult<u64> {
        Ok(self.shared.lock().get(queue).map_or(0, |q| q.ready.len() as u64))
    }

    async fn purge(&self, queue: &str) -> BrokerResult<u64> {
        let mut queues = self.shared.lock();
        Ok(queues.get_mut(queue).map_or(0, |q| std::mem::take(&mut q.ready).len() as u64))
    }
}

#[derive(Debug)]
struct MemoryConsumer {
    shared: Arc<Shared>,
    queues: Vec<String>,
}

impl MemoryConsumer {
    /// Takes the best ready message, or says how long until a delayed one is due.
    fn try_take(&self) -> Result<(String, Message), Option<Duration>> {
        let now = self.shared.clock.now();
        let mut queues = self.shared.lock();
        let mut next_due: Option<Timestamp> = None;
        for name in &self.queues {
            let Some(q) = queues.get_mut(name) else {
                continue;
            };
            q.promote_due(now);
            if let Some(ready) = q.ready.pop() {
                return Ok((name.clone(), ready.message));
            }
            if let Some(Reverse(s)) = q.scheduled.peek() {
                next_due = Some(next_due.map_or(s.eta, |d| d.min(s.eta)));
            }
        }
        Err(next_due.map(|eta| (eta - now).to_std().unwrap_or_default()))
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn next(&mut self) -> BrokerResult<Delivery> {
        loop {
            let published = self.shared.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            match self.try_take() {
                Ok((queue, message)) => {
                    let acker =
                        MemoryAcker { shared: self.shared.clone(), queue, message: Mutex::new(Some(message.clone())) };
                    // An in-process queue dies with its workers: no delivery is ever lost to count.
                    return Ok(Delivery::new(message, Box::new(acker)).with_deliveries(1));
                }
                Err(Some(due_in)) => {
                    let _ = tokio::time::timeout(due_in, published).await;
                }
                Err(None) => published.await,
            }
        }
    }
}

#[derive(Debug)]
struct MemoryAcker {
    shared: Arc<Shared>,
    queue: String,
    message: Mutex<Option<Message>>,
}

impl MemoryAcker {
    fn take(&self) -> Option<Message> {
        self.message.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[async_trait]
impl Acknowledge for MemoryAcker {
    async fn ack(&self) -> BrokerResult<()> {
        self.take();
        Ok(())
    }

    async fn requeue(&self) -> BrokerResult<()> {
        self.release();
        Ok(())
    }

    async fn reject(&self, reason: &str) -> BrokerResult<()> {
        if let Some(message) = self.take() {
            self.shared.lock().entry(self.queue.clone()).or_default().dead.push((message, reason.to_owned()));
        }
        Ok(())
    }

    fn release(&self) {
        if let Some(message) = self.take() {
            self.shared.push_ready(&self.queue, message);
        }
    }
}

impl PartialEq for Ready {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ready {}
impl PartialOrd for Ready {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ready {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.priority, self.seq).cmp(&(other.priority, other.seq))
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.eta, self.seq).cmp(&(other.eta, other.seq))
    }
}
