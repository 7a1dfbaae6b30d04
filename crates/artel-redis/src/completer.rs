//! Completions — a task's result stored and its message acknowledged — gathered from
//! every consumer of a process: one `complete.lua` call per queue for all that finished
//! while the previous call was out, so Redis runs one script for many tasks, and a quiet
//! worker's lone completion goes out at once (see [`artel_core::leased::Gather`]).
//!
//! Invariant: a completion is answered only after the call carrying it returned (and,
//! with `?replicas=N`, after replicas were given their chance), or failed: then every
//! completion of that call gets the error and its delivery is handed back.

use std::collections::HashMap;

use artel_core::leased::{Gather, Gathered, Stored};
use artel_core::{BrokerError, BrokerResult};
use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use crate::keys::QueueKeys;
use crate::toolkit::redis_error;

/// The most completions in one script call (it holds Redis for all of them).
const MAX_BATCH: usize = 128;

/// Longest wait for replicas to confirm a batch of results and acks.
const REPLICA_PATIENCE_MS: u64 = 100;
/// After replicas fell short, how long completions stop waiting for them.
const SHORT_PAUSE_MS: i64 = 5000;

/// One task's completion, waiting for its call.
pub(crate) struct Completion {
    pub(crate) queue: String,
    pub(crate) id: String,
    pub(crate) holder: String,
    pub(crate) task_id: String,
    pub(crate) json: String,
    pub(crate) ttl_ms: String,
    pub(crate) reply: oneshot::Sender<BrokerResult<Stored>>,
}

/// Sends completions to the loop that writes them.
pub(crate) type Completions = mpsc::UnboundedSender<Completion>;

/// The loop that writes completions (see the module docs).
pub(crate) struct Completer {
    pub(crate) conn: ConnectionManager,
    pub(crate) script: Script,
    pub(crate) prefix: String,
    /// Replicas each batch is given a chance to reach (`?replicas=N`); 0: none.
    pub(crate) replicas: u32,
    pub(crate) clock: std::sync::Arc<dyn artel_core::Clock>,
}

impl Completer {
    /// Writes the completions sent on `incoming` in batches; ends when every sender is gone.
    pub(crate) async fn run(mut self, incoming: mpsc::UnboundedReceiver<Completion>) {
        let mut gather = Gather::new(incoming, MAX_BATCH, |c: &Completion| c.task_id.as_str());
        let mut replicas_short_until = 0;
        while let Gathered::Batch(batch) = gather.next(None).await {
            let mut by_queue: HashMap<String, Vec<Completion>> = HashMap::new();
            for completion in batch {
                by_queue.entry(completion.queue.clone()).or_default().push(completion);
            }
            let mut outcomes = Vec::with_capacity(by_queue.len());
            for (queue, completions) in by_queue {
                let written = self.write(&queue, &completions).await;
                outcomes.push((completions, written));
            }
            if outcomes.iter().any(|(_, written)| written.is_ok()) {
                self.replicated(&mut replicas_short_until).await;
            }
            for (completions, written) in outcomes {
                answer(completions, written);
            }
        }
    }

    /// One script call for `completions` of `queue`: (written, acked) per completion.
    async fn write(&mut self, queue: &str, completions: &[Completion]) -> BrokerResult<Vec<i64>> {
        let keys = QueueKeys::new(&self.prefix, queue);
        let mut call = self.script.key(keys.held().as_slice());
        for c in completions {
            call.key(crate::keys::result(&self.prefix, &c.task_id));
        }
        for c in completions {
            call.arg(&c.id).arg(&c.holder).arg(&c.json).arg(&c.ttl_ms);
        }
        call.invoke_async(&mut self.conn).await.map_err(|e| redis_error("storing results and acknowledging", e))
    }

    /// Gives the batch's writes a moment to reach `replicas` replicas. Best effort: a
    /// completion a failover loses runs again (its message is still held on the
    /// replica), so it is not lost; and while replicas are short, completions stop
    /// waiting for a while rather than each batch blocking on them.
    async fn replicated(&mut self, short_until: &mut i64) {
        let now = self.clock.now().timestamp_millis();
        if self.replicas == 0 || now < *short_until {
            return;
        }
        match crate::shared::wait_for_replicas(&mut self.conn, self.replicas, REPLICA_PATIENCE_MS).await {
            Ok(confirmed) if confirmed >= self.replicas => {}
            outcome => {
                *short_until = now + SHORT_PAUSE_MS;
                let confirmed = outcome.map_or_else(|e| e.to_string(), |n| format!("{n} confirmed"));
                tracing::warn!(wanted = self.replicas, %confirmed, "replicas fell short on completions; results may run again after a failover");
            }
        }
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
