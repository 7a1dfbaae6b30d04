//! Consuming kombu's lists: claim in batches, hold ETA messages until due, keep held
//! messages fresh, restore abandoned ones, settle.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artel_core::{Acknowledge, BrokerResult, Consumer, Delivery, Message, TaskResult, lock};
use artel_redis::toolkit::redis_error;
use async_trait::async_trait;
use tokio::task::JoinHandle;

use crate::broker::Shared;
use crate::eta::{Waiting, now_ms};

/// A message taken off the lists: (delivery tag, message, deliveries not handed back).
type Claimed = (String, Message, u32);

/// Delivery tags this consumer holds (delivered or waiting for their ETA).
type Held = Arc<Mutex<HashSet<String>>>;

pub(crate) struct CeleryConsumer {
    shared: Arc<Shared>,
    lists: Vec<String>,
    prefetch: usize,
    ready: VecDeque<Claimed>,
    /// ETA messages with their delivery tags, held until due.
    delayed: Waiting<Claimed>,
    held: Held,
    upkeep: JoinHandle<()>,
}

impl std::fmt::Debug for CeleryConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CeleryConsumer").field("lists", &self.lists).field("held", &lock(&self.held).len()).finish()
    }
}

impl CeleryConsumer {
    pub(crate) fn new(shared: Arc<Shared>, queues: &[String], prefetch: usize) -> Self {
        let held: Held = Arc::default();
        let upkeep = tokio::spawn(upkeep(shared.clone(), held.clone()));
        let lists = shared.names.brpop_order(queues);
        Self { shared, lists, prefetch, ready: VecDeque::new(), delayed: Waiting::default(), held, upkeep }
    }

    /// Takes what is waiting (up to the prefetch), sorting ETA messages aside.
    async fn claim(&mut self) -> BrokerResult<()> {
        let want = self.prefetch.saturating_sub(self.ready.len()).max(1);
        let names = &self.shared.names;
        let mut invocation = self.shared.scripts.claim.prepare_invoke();
        invocation.key(names.unacked()).key(names.unacked_index()).key(names.dead_list()).key(names.deliveries());
        for list in &self.lists {
            invocation.key(list);
        }
        invocation.arg(artel_core::time::unix_seconds()).arg(want);
        let mut conn = self.shared.conn.clone();
        let taken: Vec<Vec<u8>> =
            invocation.invoke_async(&mut conn).await.map_err(|e| redis_error("taking messages", e))?;
        let now = now_ms();
        for claimed in taken.chunks_exact(3) {
            let tag = String::from_utf8_lossy(&claimed[0]).into_owned();
            let deliveries = std::str::from_utf8(&claimed[2]).ok().and_then(|n| n.parse().ok()).unwrap_or(1);
            lock(&self.held).insert(tag.clone());
            match Message::from_envelope_or_salvage(&claimed[1]) {
                Ok(message) => match message.headers.eta.map(|eta| eta.timestamp_millis()) {
                    Some(due) if due > now => self.delayed.hold(due, (tag, message, deliveries)),
                    _ => self.ready.push_back((tag, message, deliveries)),
                },
                Err(e) => {
                    let reason = format!("undecodable message: {e}");
                    tracing::error!(tag = %tag, %reason, "dead-lettering a message");
                    Acker::new(self.shared.clone(), self.held.clone(), tag, None).dead(&reason).await?;
                }
            }
        }
        Ok(())
    }

    fn deliver(&self, (tag, message, deliveries): Claimed) -> Delivery {
        let acker = Acker::new(self.shared.clone(), self.held.clone(), tag, Some(&message));
        Delivery::new(message, Box::new(acker)).with_deliveries(deliveries)
    }

    /// How long to wait before looking again: the poll interval or the next ETA.
    fn idle_wait(&self) -> Duration {
        let poll = self.shared.config.poll;
        self.delayed.next_in().map_or(poll, |left| poll.min(left))
    }
}

#[async_trait]
impl Consumer for CeleryConsumer {
    async fn next(&mut self) -> BrokerResult<Delivery> {
        loop {
            if let Some(due) = self.delayed.pop_due() {
                return Ok(self.deliver(due));
            }
            if let Some(ready) = self.ready.pop_front() {
                return Ok(self.deliver(ready));
            }
            // Cancel safe: a claim dropped after it ran leaves its messages in `unacked`,
            // restored after the visibility timeout; nothing is lost.
            self.claim().await?;
            if self.ready.is_empty() && self.delayed.pop_due().map(|d| self.ready.push_back(d)).is_none() {
                tokio::time::sleep(self.idle_wait()).await;
            }
        }
    }
}

impl Drop for CeleryConsumer {
    fn drop(&mut self) {
        self.upkeep.abort();
        // Hand back what was taken but not delivered, next in line.
        let undelivered: Vec<Claimed> = self.ready.drain(..).chain(self.delayed.drain()).collect();
        if undelivered.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (shared, held) = (self.shared.clone(), self.held.clone());
            runtime.spawn(async move {
                for (tag, message, _) in undelivered {
                    let acker = Acker::new(shared.clone(), held.clone(), tag, Some(&message));
                    if let Err(e) = acker.restore("RPUSH").await {
                        tracing::warn!(error = %e, "could not hand a message back; it returns after the visibility timeout");
                    }
                }
            });
        }
    }
}

/// Keeps held messages fresh in `unacked_index` (so no restorer takes them while this
/// consumer lives) and restores messages abandoned by dead consumers.
async fn upkeep(shared: Arc<Shared>, held: Held) {
    let visibility = shared.config.visibility_timeout;
    let every = (visibility / 4).clamp(Duration::from_millis(200), Duration::from_secs(60));
    let token = uuid::Uuid::new_v4().to_string();
    loop {
        let tags: Vec<String> = lock(&held).iter().cloned().collect();
        let mut conn = shared.conn.clone();
        if !tags.is_empty() {
            let now = artel_core::time::unix_seconds();
            let mut pipe = redis::pipe();
            for tag in &tags {
                pipe.cmd("ZADD").arg(shared.names.unacked_index()).arg("XX").arg(now).arg(tag).ignore();
            }
            if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                tracing::warn!(error = %e, "could not refresh held messages");
            }
        }
        let abandoned_before = artel_core::time::unix_seconds() - visibility.as_secs_f64();
        let restored: Result<i64, _> = shared
            .scripts
            .sweep
            .key(shared.names.unacked())
            .key(shared.names.unacked_index())
            .key(shared.names.unacked_mutex())
            .key(shared.names.dead_list())
            .arg(abandoned_before)
            .arg(&token)
            .arg(300_000)
            .arg(&shared.names.prefix)
            .arg(1000)
            .invoke_async(&mut conn)
            .await;
        match restored {
            Ok(n) if n > 0 => tracing::warn!(restored = n, "restored messages abandoned by a stopped consumer"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not restore abandoned messages"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Settles one held message.
#[derive(Debug)]
struct Acker {
    shared: Arc<Shared>,
    held: Held,
    tag: String,
    queue: String,
    /// Picks the list the message goes back to.
    priority: u8,
}

impl Acker {
    fn new(shared: Arc<Shared>, held: Held, tag: String, message: Option<&Message>) -> Self {
        let (queue, priority) = message.map_or((String::new(), 0), |m| (m.queue().to_owned(), m.properties.priority));
        Self { shared, held, tag, queue, priority }
    }

    fn forget(&self) {
        lock(&self.held).remove(&self.tag);
    }

    /// Puts the message back: `LPUSH` joins the back of the queue, `RPUSH` goes next.
    async fn restore(&self, how: &str) -> BrokerResult<()> {
        self.forget();
        self.move_held(how, &self.shared.names.list(&self.queue, self.priority), "").await
    }

    async fn dead(&self, reason: &str) -> BrokerResult<()> {
        self.forget();
        self.move_held("DEAD", &self.shared.names.dead_list(), reason).await
    }

    async fn move_held(&self, how: &str, target: &str, reason: &str) -> BrokerResult<()> {
        let names = &self.shared.names;
        let mut conn = self.shared.conn.clone();
        let _: i64 = self
            .shared
            .scripts
            .restore
            .key(names.unacked())
            .key(names.unacked_index())
            .key(target)
            .key(names.deliveries())
            .key(names.dead_list())
            .arg(&self.tag)
            .arg(how)
            .arg(&self.queue)
            .arg(reason)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("putting a message back", e))?;
        Ok(())
    }
}

#[async_trait]
impl Acknowledge for Acker {
    async fn ack(&self) -> BrokerResult<()> {
        self.forget();
        let mut conn = self.shared.conn.clone();
        let _: i64 = self
            .shared
            .scripts
            .ack
            .key(self.shared.names.unacked())
            .key(self.shared.names.unacked_index())
            .key(self.shared.names.deliveries())
            .arg(&self.tag)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("acknowledging a message", e))?;
        Ok(())
    }

    async fn requeue(&self) -> BrokerResult<()> {
        self.restore("LPUSH").await
    }

    async fn reject(&self, reason: &str) -> BrokerResult<()> {
        self.dead(reason).await
    }

    async fn ack_with_result(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<Option<bool>> {
        self.forget();
        let json = serde_json::to_vec(result).map_err(|e| {
            artel_core::BrokerError::new(artel_core::BrokerErrorKind::Other, "encoding a result").with_source(e)
        })?;
        let names = &self.shared.names;
        let mut conn = self.shared.conn.clone();
        let written: i64 = self
            .shared
            .scripts
            .complete
            .key(names.result(&result.task_id))
            .key(names.unacked())
            .key(names.unacked_index())
            .key(names.deliveries())
            .arg(json)
            .arg(artel_redis::toolkit::ttl_ms(ttl))
            .arg(&self.tag)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("storing a result and acknowledging", e))?;
        Ok(Some(written == 1))
    }

    fn release(&self) {
        let acker = Acker {
            shared: self.shared.clone(),
            held: self.held.clone(),
            tag: self.tag.clone(),
            queue: self.queue.clone(),
            priority: self.priority,
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = acker.restore("RPUSH").await {
                    tracing::warn!(error = %e, "could not hand a message back; it returns after the visibility timeout");
                }
            });
        }
    }
}
