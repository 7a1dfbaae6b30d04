//! Completions — a task's result stored and its message acknowledged — gathered from
//! every consumer of a process: one `complete.lua` call per queue for all that finished
//! while the previous call was out, so Redis runs one script for many tasks, and a quiet
//! worker's lone completion goes out at once (see [`artel_core::leased::Gather`]).
//!
//! The completer writes on a connection of its own: its `WAIT` for replicas (with
//! `?replicas=N`) then holds back only completions, never the claims and lease
//! heartbeats of the shared connection.
//!
//! Invariant: a completion is answered only after the call carrying it returned (and,
//! with `?replicas=N`, after replicas were given their chance), or failed: then every
//! completion of that call gets the error and its delivery is handed back.

use std::sync::Arc;

use artel_core::leased::{Gather, Gathered, Stored};
use artel_core::{BrokerError, BrokerResult, Clock};
use redis::Script;
use tokio::sync::{mpsc, oneshot};

use crate::conn::{Conn, Servers};
use crate::keys::QueueKeys;
use crate::shared::CompletionReplicas;
use crate::toolkit::redis_error;

/// The most completions in one script call (it holds Redis for all of them).
const MAX_BATCH: usize = 128;

/// Longest a call may take before its connection is taken for wedged: well above a
/// batch's script and its `WAIT`, so a silent server stalls completions this long at most.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// One task's completion, waiting for its call.
pub(crate) struct Completion {
    pub(crate) keys: Arc<QueueKeys>,
    pub(crate) id: String,
    pub(crate) holder: String,
    pub(crate) result_key: String,
    pub(crate) json: String,
    pub(crate) ttl_ms: u64,
    pub(crate) reply: oneshot::Sender<BrokerResult<Stored>>,
}

/// Sends completions to the loop that writes them.
pub(crate) type Completions = mpsc::UnboundedSender<Completion>;

/// The loop that writes completions (see the module docs).
pub(crate) struct Completer {
    /// Where its own connection is opened (on first use, and again after a failure).
    pub(crate) servers: Servers,
    pub(crate) script: Script,
    /// How each batch waits for replicas (`?replicas=N`).
    pub(crate) replicas: Arc<CompletionReplicas>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Completer {
    /// Writes the completions sent on `incoming` in batches; ends when every sender is
    /// gone (the last clone of the broker dropped).
    pub(crate) async fn run(self, incoming: mpsc::UnboundedReceiver<Completion>) {
        let mut gather = Gather::new(incoming, MAX_BATCH, |c: &Completion| c.id.as_str());
        let mut conn = None;
        while let Gathered::Batch(batch) = gather.next(None).await {
            let mut by_queue: Vec<(Arc<QueueKeys>, Vec<Completion>)> = Vec::new();
            for completion in batch {
                match by_queue.iter_mut().find(|(keys, _)| keys.leases == completion.keys.leases) {
                    Some((_, queue)) => queue.push(completion),
                    None => by_queue.push((completion.keys.clone(), vec![completion])),
                }
            }
            let mut outcomes = Vec::with_capacity(by_queue.len());
            for (keys, completions) in by_queue {
                let written = self.write(&mut conn, &keys, &completions).await;
                outcomes.push((keys, completions, written));
            }
            // One server took every call of this connection: one WAIT covers them all.
            let wrote = outcomes.iter().find(|(_, _, written)| written.is_ok());
            if let (Some(conn), Some((keys, _, _))) = (conn.as_mut(), wrote) {
                self.replicas.wait(conn, &keys.leases, self.clock.now().timestamp_millis()).await;
            }
            for (_, completions, written) in outcomes {
                answer(completions, written);
            }
        }
    }

    /// One script call for `completions` of one queue: (written, acked) per completion.
    /// A failed call drops the connection, so the next batch opens a fresh one.
    async fn write(
        &self,
        conn: &mut Option<Conn>,
        keys: &QueueKeys,
        completions: &[Completion],
    ) -> BrokerResult<Vec<i64>> {
        let open = match conn {
            Some(open) => open,
            None => conn.insert(
                self.servers
                    .open(Some(PATIENCE))
                    .await
                    .map_err(|e| redis_error("opening the completions' connection", e))?,
            ),
        };
        let mut call = self.script.key(keys.held().as_slice());
        for c in completions {
            call.key(&c.result_key);
        }
        for c in completions {
            call.arg(&c.id).arg(&c.holder).arg(&c.json).arg(c.ttl_ms);
        }
        let written = call.invoke_async(open).await.map_err(|e| redis_error("storing results and acknowledging", e));
        if written.is_err() {
            *conn = None;
        }
        written
    }
}

/// Answers each completion of one call from its (written, acked) pair.
fn answer(completions: Vec<Completion>, written: BrokerResult<Vec<i64>>) {
    match written {
        Ok(flags) => {
            for (completion, pair) in completions.into_iter().zip(flags.chunks(2)) {
                let stored = Stored { written: pair.first() == Some(&1), held: pair.get(1) == Some(&1) };
                let _ = completion.reply.send(Ok(stored));
            }
        }
        Err(error) => {
            for completion in completions {
                let _ = completion.reply.send(Err(BrokerError::new(error.kind(), error.to_string())));
            }
        }
    }
}
