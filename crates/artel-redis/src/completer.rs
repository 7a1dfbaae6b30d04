//! Completions — a task's result stored and its message acknowledged — gathered from
//! every consumer of a process: one script call per group of keys (a queue) for all that
//! finished while the previous call was out, so Redis runs one script for many tasks, and
//! a quiet worker's lone completion goes out at once (see [`artel_core::leased::Gather`]).
//! Each layout (artel's, Celery's) says how a batch is written ([`BatchWrite`]).
//!
//! The completer writes on a connection of its own: its `WAIT` for replicas (with
//! `?replicas=N`) then holds back only completions, never the claims and lease
//! heartbeats of the shared connection.
//!
//! Invariant: a completion is answered only after the call carrying it returned (and,
//! with `?replicas=N`, after replicas were given their chance), or failed: then every
//! completion of that call gets the error and its delivery is handed back.

use std::sync::Arc;
use std::time::Duration;

use artel_core::leased::{Gather, Gathered, Stored};
use artel_core::{BrokerError, BrokerResult, Clock};
use async_trait::async_trait;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use crate::conn::Conn;
use crate::toolkit::redis_error;

/// The most completions in one script call (it holds Redis for all of them).
const MAX_BATCH: usize = 128;

/// Longest a call may take before its connection is taken for wedged: well above a
/// batch's script and its `WAIT`, so a silent server stalls completions this long at most.
const PATIENCE: Duration = Duration::from_secs(2);

/// How one layout stores results and acks messages for a batch of finished tasks.
#[async_trait]
pub trait BatchWrite: Send + Sync + 'static {
    /// One finished task: its result and the message to ack.
    type Row: Send + Sync + 'static;
    /// Rows whose keys share one script call (one queue's keys) have the same group.
    fn group(row: &Self::Row) -> &str;
    /// A call holds at most one row per message (later ones go in the next call).
    fn message(row: &Self::Row) -> &str;
    /// Stores and acks `rows`, all of one group, in one call; per row whether the result
    /// was written (not kept over by a final one) and whether the message was still held.
    async fn write(&self, conn: &mut Conn, rows: &[Self::Row]) -> BrokerResult<Vec<Stored>>;
}

/// Where a completion's outcome goes.
type Reply = oneshot::Sender<BrokerResult<Stored>>;

/// One task's completion, waiting for its call.
struct Completion<R> {
    row: R,
    reply: Reply,
}

/// Where a process's consumers send their completions.
pub struct Completions<R>(mpsc::UnboundedSender<Completion<R>>);

impl<R> std::fmt::Debug for Completions<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Completions")
    }
}

impl<R: Send + Sync + 'static> Completions<R> {
    /// Starts the loop writing completions with `writer` on a connection of its own to
    /// `client`'s server, waiting for `replicas` after each batch. It ends when this is
    /// dropped.
    pub fn start<W: BatchWrite<Row = R>>(client: redis::Client, writer: W, replicas: Arc<CompletionReplicas>) -> Self {
        let (send, incoming) = mpsc::unbounded_channel();
        tokio::spawn(Completer { client, writer, replicas }.run(incoming));
        Self(send)
    }

    /// Stores and acks `row` with others that finished about now.
    pub async fn complete(&self, row: R) -> BrokerResult<Stored> {
        let (reply, stored) = oneshot::channel();
        let gone = || BrokerError::new(artel_core::BrokerErrorKind::Connection, "the Redis connection was closed");
        self.0.send(Completion { row, reply }).map_err(|_| gone())?;
        stored.await.map_err(|_| gone())?
    }
}

/// The loop that writes completions (see the module docs).
struct Completer<W> {
    client: redis::Client,
    writer: W,
    replicas: Arc<CompletionReplicas>,
}

impl<W: BatchWrite> Completer<W> {
    async fn run(self, incoming: mpsc::UnboundedReceiver<Completion<W::Row>>) {
        let mut gather = Gather::new(incoming, MAX_BATCH, |c: &Completion<W::Row>| W::message(&c.row));
        let mut conn = None;
        while let Gathered::Batch(batch) = gather.next(None).await {
            // Per group: its rows, and their replies in the same order.
            let mut groups: Vec<(Vec<W::Row>, Vec<Reply>)> = Vec::new();
            for Completion { row, reply } in batch {
                match groups.iter_mut().find(|(rows, _)| rows.first().is_some_and(|r| W::group(r) == W::group(&row))) {
                    Some((rows, replies)) => {
                        rows.push(row);
                        replies.push(reply);
                    }
                    None => groups.push((vec![row], vec![reply])),
                }
            }
            let mut outcomes = Vec::with_capacity(groups.len());
            for (rows, replies) in groups {
                let written = self.write(&mut conn, &rows).await;
                outcomes.push((rows, replies, written));
            }
            // One server took every call of this connection: one WAIT covers them all.
            let wrote = outcomes.iter().find(|(_, _, written)| written.is_ok()).and_then(|(rows, _, _)| rows.first());
            if let (Some(conn), Some(row)) = (conn.as_mut(), wrote) {
                self.replicas.wait(conn, W::group(row)).await;
            }
            for (_, replies, written) in outcomes {
                answer(replies, written);
            }
        }
    }

    /// One call for `rows` of one group. A failed call drops the connection, so the next
    /// batch opens a fresh one.
    async fn write(&self, conn: &mut Option<Conn>, rows: &[W::Row]) -> BrokerResult<Vec<Stored>> {
        let open = match conn {
            Some(open) => open,
            None => {
                let config = crate::toolkit::manager_config().set_response_timeout(Some(PATIENCE));
                let opened = ConnectionManager::new_with_config(self.client.clone(), config)
                    .await
                    .map_err(|e| redis_error("opening the completions' connection", e))?;
                conn.insert(Conn::Server(opened))
            }
        };
        let written = self.writer.write(open, rows).await;
        if written.is_err() {
            *conn = None;
        }
        written
    }
}

/// Answers each completion of one call from its outcome (a reply without one, should
/// the script return fewer, is dropped: its caller sees an error and hands the delivery
/// back).
fn answer(replies: Vec<Reply>, written: BrokerResult<Vec<Stored>>) {
    match written {
        Ok(outcomes) => {
            for (reply, stored) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(stored));
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(BrokerError::new(error.kind(), error.to_string())));
            }
        }
    }
}

/// Longest wait for replicas to confirm finished tasks' results and acks.
const COMPLETE_PATIENCE_MS: u64 = 100;
/// After replicas fell short on a completion, how long completions stop waiting for them.
const SHORT_PAUSE_MS: i64 = 5000;

/// How finished tasks' results and acks wait for `?replicas=N`: best effort. A
/// completion a failover loses runs again (its message is still held on the replica), so
/// it is not lost; and while replicas are short, completions stop waiting for a while
/// rather than each blocking its connection.
pub struct CompletionReplicas {
    wanted: u32,
    clock: Arc<dyn Clock>,
    /// Until when (unix ms) completions skip waiting, after replicas fell short.
    short_until: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for CompletionReplicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletionReplicas").field("wanted", &self.wanted).finish()
    }
}

impl CompletionReplicas {
    /// Waiting for `wanted` replicas; 0: not at all. `clock` times the pauses.
    pub fn new(wanted: u32, clock: Arc<dyn Clock>) -> Self {
        Self { wanted, clock, short_until: Default::default() }
    }

    /// Not waiting for replicas (a layout without `?replicas=`).
    pub fn none() -> Self {
        Self::new(0, Arc::new(artel_core::SystemClock))
    }

    /// Gives this connection's writes so far to `key`'s server a moment to reach the
    /// replicas.
    pub(crate) async fn wait(&self, conn: &mut Conn, key: &str) {
        let wanted = self.wanted;
        if wanted == 0 {
            return;
        }
        let now_ms = self.clock.now().timestamp_millis();
        if now_ms < self.short_until.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        match crate::shared::wait_for_replicas(conn, key, wanted, COMPLETE_PATIENCE_MS).await {
            Ok(confirmed) if confirmed >= wanted => {}
            outcome => {
                self.short_until.store(now_ms + SHORT_PAUSE_MS, std::sync::atomic::Ordering::Relaxed);
                let confirmed = outcome.map_or_else(|e| e.to_string(), |n| format!("{n} confirmed"));
                tracing::warn!(wanted, %confirmed, "replicas fell short on completions; results may run again after a failover");
            }
        }
    }
}
