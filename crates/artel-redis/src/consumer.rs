//! Claiming in batches, blocking on an empty queue, keeping leases alive, settling.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artel_core::{Acknowledge, BrokerResult, Consumer, Delivery, FailedTask, Message, TaskResult, lock};
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::broker::{Shared, redis_error};

/// Held message ids, by queue, for the heartbeat.
type Held = Arc<Mutex<HashMap<String, Vec<String>>>>;

pub(crate) struct RedisConsumer {
    shared: Arc<Shared>,
    queues: Vec<String>,
    prefetch: usize,
    token: Arc<str>,
    /// Claimed, not yet handed out: (queue, id, message, deliveries).
    buffer: VecDeque<(String, String, Message, u32)>,
    held: Held,
    /// Only for BLPOP: blocking never stalls the shared multiplexed connection. `None`
    /// after it failed; reopened on the next wait.
    blocking: Option<MultiplexedConnection>,
    heartbeat: JoinHandle<()>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl RedisConsumer {
    pub(crate) async fn new(shared: Arc<Shared>, queues: Vec<String>, prefetch: usize) -> BrokerResult<Self> {
        let blocking = Some(open_blocking(&shared).await?);
        let token: Arc<str> = uuid::Uuid::new_v4().to_string().into();
        let held: Held = Arc::default();
        let heartbeat = tokio::spawn(heartbeat(shared.clone(), token.clone(), held.clone()));
        Ok(Self { shared, queues, prefetch, token, buffer: VecDeque::new(), held, blocking, heartbeat })
    }

    /// Claims from the queues in order; returns how long until something may be due.
    async fn claim(&mut self) -> BrokerResult<Option<i64>> {
        let now = self.shared.now_ms();
        let until = now + millis(self.shared.config.lease);
        let mut next_due: Option<i64> = None;
        for queue in self.queues.clone() {
            let left = self.prefetch.saturating_sub(self.buffer.len());
            if left == 0 {
                break;
            }
            let keys = self.shared.keys(&queue);
            let mut conn = self.shared.conn.clone();
            let reply: Vec<redis::Value> = self
                .shared
                .scripts
                .claim
                .key(&keys.pending)
                .key(&keys.scheduled)
                .key(&keys.leases)
                .key(&keys.messages)
                .key(&keys.priorities)
                .key(&keys.holders)
                .key(&keys.sequence)
                .arg(now)
                .arg(until)
                .arg(left)
                .arg(&*self.token)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| redis_error("claiming messages", e))?;
            if let [due] = reply.as_slice() {
                if let Ok(due) = redis::from_redis_value::<i64>(due.clone()) {
                    if due >= 0 {
                        next_due = Some(next_due.map_or(due, |d| d.min(due)));
                    }
                }
                continue;
            }
            for claimed in reply.chunks(3) {
                let field = |i: usize| claimed.get(i).cloned().unwrap_or(redis::Value::Nil);
                let (Ok(id), Ok(envelope)) =
                    (redis::from_redis_value::<String>(field(0)), redis::from_redis_value::<Vec<u8>>(field(1)))
                else {
                    continue;
                };
                let deliveries = redis::from_redis_value::<u32>(field(2)).unwrap_or(1);
                lock(&self.held).entry(queue.clone()).or_default().push(id.clone());
                match Message::from_envelope_or_salvage(&envelope) {
                    Ok(message) => self.buffer.push_back((queue.clone(), id, message, deliveries)),
                    Err(error) => {
                        let acker = self.acker(&queue, &id);
                        acker.reject(&format!("undecodable message: {error}")).await?;
                    }
                }
            }
        }
        Ok(next_due)
    }

    fn acker(&self, queue: &str, id: &str) -> RedisAcker {
        RedisAcker {
            shared: self.shared.clone(),
            queue: queue.to_owned(),
            id: id.to_owned(),
            token: self.token.clone(),
            held: self.held.clone(),
        }
    }
}

/// The consumer's own connection for BLPOP. Its replies may take the whole idle wait:
/// redis-rs's default 500 ms response timeout raced the server's 0.5 s BLPOP timeout and
/// failed idle consumers now and then with a transient error (a spurious "broker
/// unavailable" warning and back-off).
async fn open_blocking(shared: &Shared) -> BrokerResult<MultiplexedConnection> {
    let patience = shared.config.idle_wait + Duration::from_secs(5);
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(patience));
    shared
        .client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| redis_error("opening the consumer's blocking connection", e))
}

/// Extends every lease this consumer holds, a few times per lease period.
async fn heartbeat(shared: Arc<Shared>, token: Arc<str>, held: Held) {
    let lease = shared.config.lease;
    loop {
        tokio::time::sleep(lease / 3).await;
        let until = shared.now_ms() + millis(lease);
        let snapshot: Vec<(String, Vec<String>)> =
            lock(&held).iter().filter(|(_, ids)| !ids.is_empty()).map(|(q, ids)| (q.clone(), ids.clone())).collect();
        for (queue, ids) in snapshot {
            let keys = shared.keys(&queue);
            let mut conn = shared.conn.clone();
            let extended: Result<i64, _> = shared
                .scripts
                .extend
                .key(&keys.leases)
                .key(&keys.holders)
                .arg(until)
                .arg(&*token)
                .arg(&ids)
                .invoke_async(&mut conn)
                .await;
            if let Err(error) = extended {
                tracing::warn!(%error, "could not extend leases; held messages may be delivered again");
            }
        }
    }
}

#[async_trait]
impl Consumer for RedisConsumer {
    async fn next(&mut self) -> BrokerResult<Delivery> {
        loop {
            if let Some((queue, id, message, deliveries)) = self.buffer.pop_front() {
                let acker = self.acker(&queue, &id);
                return Ok(Delivery::new(message, Box::new(acker)).with_deliveries(deliveries));
            }
            let next_due = self.claim().await?;
            if !self.buffer.is_empty() {
                continue;
            }
            let idle = self.shared.config.idle_wait;
            let wait = next_due
                .map(|due| Duration::from_millis(u64::try_from(due - self.shared.now_ms()).unwrap_or(0)).min(idle))
                .unwrap_or(idle);
            if wait.is_zero() {
                continue;
            }
            let signals: Vec<String> = self.queues.iter().map(|q| self.shared.keys(q).signal).collect();
            let mut blocking = match self.blocking.take() {
                Some(conn) => conn,
                None => open_blocking(&self.shared).await?,
            };
            let woken: Result<Option<(String, String)>, _> =
                redis::cmd("BLPOP").arg(&signals).arg(wait.as_secs_f64()).query_async(&mut blocking).await;
            match woken {
                // Keep the connection only while it works: after a server restart the
                // next wait opens a fresh one (the error tells the worker to back off).
                Ok(_) => self.blocking = Some(blocking),
                Err(e) => return Err(redis_error("waiting for messages", e)),
            }
        }
    }
}

impl Drop for RedisConsumer {
    fn drop(&mut self) {
        self.heartbeat.abort();
        // Prefetched messages never started: hand them back now rather than after the lease.
        for (queue, id, ..) in self.buffer.drain(..) {
            let acker = RedisAcker {
                shared: self.shared.clone(),
                queue,
                id,
                token: self.token.clone(),
                held: self.held.clone(),
            };
            acker.release();
        }
    }
}

impl std::fmt::Debug for RedisConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConsumer").field("queues", &self.queues).field("buffered", &self.buffer.len()).finish()
    }
}

/// Settles one claimed message; every script checks the holder token first.
#[derive(Debug)]
struct RedisAcker {
    shared: Arc<Shared>,
    queue: String,
    id: String,
    token: Arc<str>,
    held: Held,
}

/// `value` as JSON for a script argument.
fn to_json(what: &str, value: &impl serde::Serialize) -> BrokerResult<String> {
    serde_json::to_string(value)
        .map_err(|e| artel_core::BrokerError::new(artel_core::BrokerErrorKind::Other, what.to_owned()).with_source(e))
}

impl RedisAcker {
    /// Warns when a settling script found the message no longer held by this consumer.
    fn lapsed_unless(&self, held: bool) {
        if !held {
            tracing::warn!(id = %self.id, "acked a message whose lease had lapsed; another worker may run it again");
        }
    }

    fn forget(&self) {
        if let Some(ids) = lock(&self.held).get_mut(&self.queue) {
            ids.retain(|id| id != &self.id);
        }
    }

    async fn run_release(shared: Arc<Shared>, queue: String, id: String, token: Arc<str>) -> BrokerResult<()> {
        let keys = shared.keys(&queue);
        let mut conn = shared.conn.clone();
        let _: i64 = shared
            .scripts
            .release
            .key(&keys.pending)
            .key(&keys.leases)
            .key(&keys.priorities)
            .key(&keys.holders)
            .key(&keys.sequence)
            .key(&keys.signal)
            .arg(&id)
            .arg(&*token)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("releasing a message", e))?;
        Ok(())
    }
}

#[async_trait]
impl Acknowledge for RedisAcker {
    async fn ack(&self) -> BrokerResult<()> {
        self.forget();
        let keys = self.shared.keys(&self.queue);
        let mut conn = self.shared.conn.clone();
        let held: i64 = self
            .shared
            .scripts
            .ack
            .key(keys.held().as_slice())
            .arg(&self.id)
            .arg(&*self.token)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("acknowledging a message", e))?;
        self.lapsed_unless(held == 1);
        Ok(())
    }

    async fn requeue(&self) -> BrokerResult<()> {
        self.forget();
        Self::run_release(self.shared.clone(), self.queue.clone(), self.id.clone(), self.token.clone()).await
    }

    async fn reject(&self, reason: &str) -> BrokerResult<()> {
        self.forget();
        let keys = self.shared.keys(&self.queue);
        let entry = json!({"id": self.id, "reason": reason, "died_at_ms": self.shared.now_ms()}).to_string();
        let mut conn = self.shared.conn.clone();
        let _: i64 = self
            .shared
            .scripts
            .bury
            .key(keys.held().as_slice())
            .key(&keys.dead)
            .arg(&self.id)
            .arg(&*self.token)
            .arg(entry)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("dead-lettering a message", e))?;
        Ok(())
    }

    async fn ack_failed(&self, failure: &FailedTask) -> BrokerResult<()> {
        self.forget();
        let json = to_json("encoding a failure", failure)?;
        let keys = self.shared.keys(&self.queue);
        let mut conn = self.shared.conn.clone();
        let held: i64 = self
            .shared
            .scripts
            .fail
            .key(keys.held().as_slice())
            .key(&keys.failed)
            .key(&keys.failed_entries)
            .key(&keys.failed_envelopes)
            .arg(&self.id)
            .arg(&*self.token)
            .arg(&failure.task_id)
            .arg(json)
            .arg(failure.failed_at_ms)
            .arg(self.shared.config.failed_kept)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("recording a failed task", e))?;
        self.lapsed_unless(held == 1);
        Ok(())
    }

    async fn ack_with_result(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<Option<bool>> {
        self.forget();
        let json = to_json("encoding a result", result)?;
        let keys = self.shared.keys(&self.queue);
        let mut conn = self.shared.conn.clone();
        let (written, acked): (i64, i64) = self
            .shared
            .scripts
            .complete
            .key(keys.held().as_slice())
            .key(crate::keys::result(&self.shared.config.prefix, &result.task_id))
            .arg(&self.id)
            .arg(&*self.token)
            .arg(json)
            .arg(crate::toolkit::ttl_ms(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("storing a result and acknowledging", e))?;
        self.lapsed_unless(acked == 1);
        Ok(Some(written == 1))
    }

    fn release(&self) {
        self.forget();
        let task = Self::run_release(self.shared.clone(), self.queue.clone(), self.id.clone(), self.token.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = task.await {
                        tracing::warn!(%error, "could not release a message; its lease will lapse instead");
                    }
                });
            }
            Err(_) => tracing::warn!(id = %self.id, "released outside a runtime; the lease will lapse instead"),
        }
    }
}
