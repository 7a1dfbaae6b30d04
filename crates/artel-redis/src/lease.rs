//! The storage verbs of Redis's leases, for [`artel_core::leased::LeasedConsumer`]: each
//! is one Lua script (`scripts/`) that checks the holder token before it writes. Idle
//! consumers block on the queues' signal lists on a connection of their own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use artel_core::leased::{Claim, Claimed, LeaseStore, Stored};
use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, FailedTask, Queues, TaskResult};
use async_trait::async_trait;
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::completer::BatchWrite;
use crate::conn::{Conn, Servers};
use crate::keys::QueueKeys;
use crate::shared::Shared;
use crate::toolkit::redis_error;

/// A held message: its queue (whose keys hold it) and its id there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HeldMessage {
    queue: String,
    id: String,
}

/// An idle consumer's wait on its queues' signal lists.
pub(crate) enum Waiter {
    /// One BLPOP over every signal list: one server, or one queue on a cluster.
    Blocking {
        signals: Vec<String>,
        /// Only for BLPOP, so blocking never stalls the shared connection. `None` after
        /// it failed; reopened on the next wait.
        conn: Option<Conn>,
    },
    /// Queues on a cluster, whose signal lists hash to different slots (one BLPOP
    /// cannot span them): a listener per queue blocks on its own list and wakes the
    /// consumer.
    Listening(Listeners),
}

/// Per-queue BLPOP loops that stop when dropped.
pub(crate) struct Listeners {
    woken: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Listeners {
    fn start(servers: &Servers, signals: Vec<String>, idle: Duration) -> Self {
        let woken = Arc::new(Notify::new());
        let tasks = signals
            .into_iter()
            .map(|signal| tokio::spawn(listen(servers.clone(), signal, idle, woken.clone())))
            .collect();
        Self { woken, tasks }
    }
}

/// Blocks on `signal` over and over, waking the consumer whenever a token comes.
async fn listen(servers: Servers, signal: String, idle: Duration, woken: Arc<Notify>) {
    let mut conn = None;
    loop {
        let mut open = match conn.take() {
            Some(open) => open,
            None => match servers.open(Some(idle + BLOCKING_MARGIN)).await {
                Ok(open) => open,
                Err(error) => {
                    tracing::debug!(%error, %signal, "cannot open a listener's connection; trying again");
                    tokio::time::sleep(idle).await;
                    continue;
                }
            },
        };
        let popped: Result<Option<(String, String)>, _> =
            redis::cmd("BLPOP").arg(&signal).arg(idle.as_secs_f64()).query_async(&mut open).await;
        match popped {
            Ok(token) => {
                if token.is_some() {
                    woken.notify_one();
                }
                conn = Some(open);
            }
            Err(error) => {
                tracing::debug!(%error, %signal, "a listener's wait failed; reopening");
                tokio::time::sleep(idle).await;
            }
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `value` as JSON for a script argument.
fn to_json(what: &str, value: &impl serde::Serialize) -> BrokerResult<String> {
    serde_json::to_string(value).map_err(|e| BrokerError::new(BrokerErrorKind::Other, what.to_owned()).with_source(e))
}

/// How much longer than its timeout a blocking read's reply may take. redis-rs's default
/// 500 ms response timeout raced the server's 0.5 s BLPOP timeout and failed idle
/// consumers now and then with a transient error (a spurious "broker unavailable"
/// warning and back-off).
const BLOCKING_MARGIN: Duration = Duration::from_secs(5);

/// The consumer's own connection for BLPOP.
async fn open_blocking(shared: &Shared) -> BrokerResult<Conn> {
    shared
        .servers
        .open(Some(shared.config.idle_wait + BLOCKING_MARGIN))
        .await
        .map_err(|e| redis_error("opening the consumer's blocking connection", e))
}

#[async_trait]
impl LeaseStore for Shared {
    type Id = HeldMessage;
    type Waiter = Waiter;

    fn heartbeat_every(&self) -> Duration {
        self.config.lease / 3
    }

    async fn waiter(&self, queues: &Queues) -> BrokerResult<Waiter> {
        let signals: Vec<String> = queues.iter().map(|q| self.keys(q).signal.clone()).collect();
        if self.conn.is_cluster() && signals.len() > 1 {
            return Ok(Waiter::Listening(Listeners::start(&self.servers, signals, self.config.idle_wait)));
        }
        Ok(Waiter::Blocking { signals, conn: Some(open_blocking(self).await?) })
    }

    async fn claim(&self, queues: &Queues, holder: &str, limit: usize) -> BrokerResult<Claim<HeldMessage>> {
        let now = self.now_ms();
        let until = now + millis(self.config.lease);
        let mut messages = Vec::new();
        let mut next_due: Option<i64> = None;
        for queue in queues.iter() {
            let left = limit.saturating_sub(messages.len());
            if left == 0 {
                break;
            }
            let keys = self.keys(queue);
            let mut conn = self.conn.clone();
            let reply: Vec<redis::Value> = self
                .scripts
                .claim
                .key(&keys.pending)
                .key(&keys.scheduled)
                .key(&keys.leases)
                .key(&keys.messages)
                .key(&keys.priorities)
                .key(&keys.holders)
                .key(&keys.sequence)
                .key(&keys.clock)
                .arg(now)
                .arg(until)
                .arg(left)
                .arg(holder)
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
                messages.push(Claimed { id: HeldMessage { queue: queue.clone(), id }, envelope, deliveries });
            }
        }
        let next_visible = match messages.is_empty() {
            true => next_due.map(|due| Duration::from_millis(u64::try_from(due - self.now_ms()).unwrap_or(0))),
            false => None,
        };
        Ok(Claim { messages, next_visible })
    }

    async fn wait_for_work(&self, waiter: &mut Waiter, due_in: Option<Duration>) -> BrokerResult<()> {
        let idle = self.config.idle_wait;
        let wait = due_in.map_or(idle, |d| d.min(idle));
        if wait.is_zero() {
            return Ok(());
        }
        let (signals, conn) = match waiter {
            Waiter::Blocking { signals, conn } => (signals, conn),
            Waiter::Listening(listeners) => {
                let _ = tokio::time::timeout(wait, listeners.woken.notified()).await;
                return Ok(());
            }
        };
        let mut blocking = match conn.take() {
            Some(open) => open,
            None => open_blocking(self).await?,
        };
        let woken: Result<Option<(String, String)>, _> =
            redis::cmd("BLPOP").arg(&*signals).arg(wait.as_secs_f64()).query_async(&mut blocking).await;
        // Keep the connection only while it works: after a server restart the next wait
        // opens a fresh one (the error tells the worker to back off).
        woken.map_err(|e| redis_error("waiting for messages", e))?;
        *conn = Some(blocking);
        Ok(())
    }

    async fn extend(&self, holder: &str, held: &[HeldMessage]) -> BrokerResult<()> {
        let until = self.now_ms() + millis(self.config.lease);
        let mut by_queue: HashMap<&str, Vec<&str>> = HashMap::new();
        for message in held {
            by_queue.entry(&message.queue).or_default().push(&message.id);
        }
        for (queue, ids) in by_queue {
            let keys = self.keys(queue);
            let mut conn = self.conn.clone();
            let _: i64 = self
                .scripts
                .extend
                .key(&keys.leases)
                .key(&keys.holders)
                .arg(until)
                .arg(holder)
                .arg(&ids)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| redis_error("extending leases", e))?;
        }
        Ok(())
    }

    async fn ack(&self, holder: &str, held: &HeldMessage) -> BrokerResult<bool> {
        let keys = self.keys(&held.queue);
        let mut conn = self.conn.clone();
        let acked: i64 = self
            .scripts
            .ack
            .key(keys.held().as_slice())
            .arg(&held.id)
            .arg(holder)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("acknowledging a message", e))?;
        Ok(acked == 1)
    }

    async fn ack_failed(&self, holder: &str, held: &HeldMessage, failure: &FailedTask) -> BrokerResult<bool> {
        let json = to_json("encoding a failure", failure)?;
        let keys = self.keys(&held.queue);
        let mut conn = self.conn.clone();
        let acked: i64 = self
            .scripts
            .fail
            .key(keys.held().as_slice())
            .key(&keys.failed)
            .key(&keys.failed_entries)
            .key(&keys.failed_envelopes)
            .arg(&held.id)
            .arg(holder)
            .arg(&failure.task_id)
            .arg(json)
            .arg(failure.failed_at_ms)
            .arg(self.config.failed_kept)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("recording a failed task", e))?;
        Ok(acked == 1)
    }

    async fn ack_with_result(
        &self,
        holder: &str,
        held: &HeldMessage,
        result: &TaskResult,
        ttl: Option<Duration>,
    ) -> BrokerResult<Option<Stored>> {
        // None on a cluster: the result's key and the queue's hash to different slots,
        // and no script touches two, so the worker stores the result, then acks.
        let Some(completions) = &self.completions else { return Ok(None) };
        let finished = Finished {
            keys: self.keys(&held.queue),
            id: held.id.clone(),
            holder: holder.to_owned(),
            result_key: crate::keys::result(&self.config.prefix, &result.task_id),
            json: to_json("encoding a result", result)?,
            ttl_ms: crate::toolkit::ttl_ms(ttl),
        };
        completions.complete(finished).await.map(Some)
    }

    async fn release(&self, holder: &str, held: &HeldMessage) -> BrokerResult<()> {
        let keys = self.keys(&held.queue);
        let mut conn = self.conn.clone();
        let _: i64 = self
            .scripts
            .release
            .key(&keys.pending)
            .key(&keys.leases)
            .key(&keys.priorities)
            .key(&keys.holders)
            .key(&keys.sequence)
            .key(&keys.signal)
            .arg(&held.id)
            .arg(holder)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("releasing a message", e))?;
        Ok(())
    }

    async fn bury(&self, holder: &str, held: &HeldMessage, reason: &str) -> BrokerResult<()> {
        let keys = self.keys(&held.queue);
        let entry = json!({"id": held.id, "reason": reason, "died_at_ms": self.now_ms()}).to_string();
        let mut conn = self.conn.clone();
        let _: i64 = self
            .scripts
            .bury
            .key(keys.held().as_slice())
            .key(&keys.dead)
            .arg(&held.id)
            .arg(holder)
            .arg(entry)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("dead-lettering a message", e))?;
        Ok(())
    }
}

/// A finished task for `complete.lua`: its result, and the message its holder acks.
pub(crate) struct Finished {
    keys: Arc<QueueKeys>,
    id: String,
    holder: String,
    result_key: String,
    json: String,
    ttl_ms: u64,
}

/// Writes finished tasks of one queue with one `complete.lua` call.
pub(crate) struct CompleteScript(pub(crate) redis::Script);

#[async_trait]
impl BatchWrite for CompleteScript {
    type Row = Finished;

    fn group(row: &Finished) -> &str {
        &row.keys.leases
    }

    fn message(row: &Finished) -> &str {
        &row.id
    }

    async fn write(&self, conn: &mut Conn, rows: &[Finished]) -> BrokerResult<Vec<Stored>> {
        let Some(first) = rows.first() else { return Ok(Vec::new()) };
        let mut call = self.0.key(first.keys.held().as_slice());
        for row in rows {
            call.key(&row.result_key);
        }
        for row in rows {
            call.arg(&row.id).arg(&row.holder).arg(&row.json).arg(row.ttl_ms);
        }
        let flags: Vec<i64> =
            call.invoke_async(conn).await.map_err(|e| redis_error("storing results and acknowledging", e))?;
        Ok(flags
            .chunks(2)
            .map(|pair| Stored { written: pair.first() == Some(&1), held: pair.get(1) == Some(&1) })
            .collect())
    }
}
