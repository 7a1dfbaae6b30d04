//! Completions — a task's result stored and its message removed — gathered from every
//! consumer of a process into one statement: while one batch is in the database the next
//! gathers, so a busy worker pays one round trip for many tasks and a quiet one waits for
//! no timer (a lone completion goes out at once).
//!
//! Where the server's autovacuum is off, the completer vacuums the hot tables itself every
//! [`VACUUM_EVERY`] completions, and once the queue goes quiet, so finished messages do
//! not bloat them.
//!
//! Invariants: a completion is answered only after the statement carrying it committed
//! (or failed: then every completion in it gets the error and its message goes back);
//! two completions of one task id never share a statement (`ON CONFLICT` may touch a row
//! once) — the later one goes in the next.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use artel_core::leased::{Gather, Gathered, Stored};
use artel_core::{BrokerError, BrokerResult, Clock, StoreSignal};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::shared::pg_error;

/// The most completions in one statement.
const MAX_BATCH: usize = 500;

/// Where the server's autovacuum is off, completions between two vacuums of the hot
/// tables by this process.
const VACUUM_EVERY: u64 = 50_000;

/// A vacuum also follows this many completions once none came for [`QUIET`].
const VACUUM_WHEN_QUIET: u64 = 1_000;
const QUIET: std::time::Duration = std::time::Duration::from_secs(5);

/// One task's completion, waiting for its statement.
pub(crate) struct Completion {
    pub(crate) message_id: i64,
    pub(crate) holder: String,
    pub(crate) task_id: String,
    pub(crate) state: &'static str,
    pub(crate) result: Vec<u8>,
    pub(crate) expires_at: Option<i64>,
    pub(crate) reply: oneshot::Sender<BrokerResult<Stored>>,
}

/// Sends completions to the loop that writes them (see [`run`]).
pub(crate) type Completions = mpsc::UnboundedSender<Completion>;

/// The loop that writes completions (see the module docs).
pub(crate) struct Completer {
    /// The pool that commits without waiting for the WAL flush (see `Shared::settle`).
    pub(crate) pool: PgPool,
    /// The NOTIFY channel of ready results.
    pub(crate) channel: String,
    pub(crate) clock: Arc<dyn Clock>,
    /// Wakes this process's result waiters (others hear the statement's NOTIFY).
    pub(crate) stored: Arc<StoreSignal>,
    /// Whether to vacuum the hot tables now and then (the server's autovacuum is off).
    pub(crate) vacuum: bool,
}

impl Completer {
    /// Writes the completions sent on `incoming` in batches, deleting expired results now
    /// and then; ends when every sender is gone.
    pub(crate) async fn run(self, incoming: mpsc::UnboundedReceiver<Completion>) {
        let mut gather = Gather::new(incoming, MAX_BATCH, |c: &Completion| c.task_id.as_str());
        let mut since_vacuum = 0;
        let vacuuming = Arc::new(AtomicBool::new(false));
        loop {
            // A queue gone quiet is vacuumed once: its emptied pages are given back.
            let quiet = self.vacuum && since_vacuum >= VACUUM_WHEN_QUIET;
            let batch = match gather.next(quiet.then_some(QUIET)).await {
                Gathered::Batch(batch) => batch,
                Gathered::Closed => return,
                Gathered::Quiet => {
                    if self.start_vacuum(&vacuuming) {
                        since_vacuum = 0;
                    }
                    continue;
                }
            };
            let (now, written) = (self.clock.now().timestamp_millis(), batch.len() as u64);
            if self.write(batch, now).await {
                self.stored.stored();
            }
            if crate::backend::sweep_due(written) {
                if let Err(error) = crate::backend::sweep(&self.pool, now).await {
                    tracing::warn!(%error, "could not delete expired results; the next sweep will");
                }
            }
            since_vacuum += written;
            if self.vacuum && since_vacuum >= VACUUM_EVERY && self.start_vacuum(&vacuuming) {
                since_vacuum = 0;
            }
        }
    }

    /// Starts a vacuum beside the completions unless one of this process runs; true when
    /// it started.
    fn start_vacuum(&self, vacuuming: &Arc<AtomicBool>) -> bool {
        let start = !vacuuming.swap(true, Ordering::AcqRel);
        if start {
            tokio::spawn(vacuum(self.pool.clone(), vacuuming.clone()));
        }
        start
    }

    /// Runs one batch and answers each completion; true when a result was written.
    async fn write(&self, batch: Vec<Completion>, now: i64) -> bool {
        let rows: Result<Vec<(i64, bool, bool)>, _> = sqlx::query_as(include_str!("../queries/message/complete.sql"))
            .bind(batch.iter().map(|c| c.task_id.as_str()).collect::<Vec<_>>())
            .bind(batch.iter().map(|c| c.state).collect::<Vec<_>>())
            .bind(batch.iter().map(|c| c.result.as_slice()).collect::<Vec<_>>())
            .bind(batch.iter().map(|c| c.expires_at).collect::<Vec<_>>())
            .bind(batch.iter().map(|c| c.message_id).collect::<Vec<_>>())
            .bind(batch.iter().map(|c| c.holder.as_str()).collect::<Vec<_>>())
            .bind(now)
            .bind(&self.channel)
            .fetch_all(&self.pool)
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                let error = pg_error("storing results and acknowledging", e);
                for completion in batch {
                    let _ = completion.reply.send(Err(BrokerError::new(error.kind(), error.to_string())));
                }
                return false;
            }
        };
        let outcome: std::collections::HashMap<i64, (bool, bool)> =
            rows.into_iter().map(|(id, written, held)| (id, (written, held))).collect();
        let mut announced = false;
        for completion in batch {
            let (written, held) = outcome.get(&completion.message_id).copied().unwrap_or((false, false));
            announced |= written;
            let _ = completion.reply.send(Ok(Stored { written, held }));
        }
        announced
    }
}

/// Vacuums the hot tables (seconds on a large backlog), then lets the next one start.
async fn vacuum(pool: PgPool, vacuuming: Arc<AtomicBool>) {
    let started = std::time::Instant::now();
    match sqlx::raw_sql(include_str!("../queries/vacuum.sql")).execute(&pool).await {
        Ok(_) => tracing::debug!(took = ?started.elapsed(), "vacuumed the queue tables"),
        Err(e) => tracing::warn!(error = %pg_error("vacuuming the queue tables", e), "the next vacuum will retry"),
    }
    vacuuming.store(false, Ordering::Release);
}
