//! What a broker's clones share: the database thread, clock, timings and wake-ups. A
//! leaf: the broker, its lease store, result backend and admin all build on it.

use std::sync::Arc;
use std::time::Duration;

use artel_core::{Clock, StoreSignal};
use tokio::sync::watch;

use crate::db::Db;
use crate::wake::Topic;

/// Timing settings of a [`crate::SqliteBroker`].
#[derive(Debug, Clone, Copy)]
pub struct SqliteConfig {
    /// How long a claimed message stays hidden without a heartbeat; after it lapses the
    /// message is delivered again (a crashed worker's tasks come back after this).
    pub lease: Duration,
    /// How often an idle consumer looks for messages published by other processes.
    pub poll_interval: Duration,
    /// How often a result waiter looks for results stored by other processes (this
    /// process's stores wake it at once).
    pub result_poll: Duration,
    /// How many tasks that failed for good are kept per queue for `artel failed`.
    pub failed_kept: u32,
    /// How many task records the task history keeps; the least recently updated go first.
    pub history_kept: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(50),
            result_poll: Duration::from_millis(20),
            failed_kept: artel_core::FAILED_KEPT,
            history_kept: artel_core::HISTORY_KEPT,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) db: Db,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: SqliteConfig,
    /// Counts publishes and hand-backs (this process's, and others' through `wake`):
    /// this process's consumers wake on a change.
    pub(crate) published: Arc<watch::Sender<u64>>,
    /// Wakes this process's result waiters at once on a store (this process's, and
    /// others' through `wake`).
    pub(crate) stored: Arc<StoreSignal>,
    /// Wake-ups to and from other processes on the same file.
    pub(crate) wake: crate::wake::Wake,
    /// When this broker last deleted expired results (unix ms).
    pub(crate) last_sweep_ms: std::sync::atomic::AtomicI64,
}

impl Shared {
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    pub(crate) fn now_us(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }

    /// Wakes the waiting consumers of this process and of the others: something may be
    /// ready.
    pub(crate) fn wake_consumers(&self) {
        self.published.send_modify(|n| *n = n.wrapping_add(1));
        self.wake.send(Topic::Published);
    }

    /// Wakes the result waiters of this process and of the others: a result was stored.
    pub(crate) fn wake_waiters(&self) {
        self.stored.stored();
        self.wake.send(Topic::Stored);
    }

    /// From now on, other processes' publishes (or stores) wake this one's waiters.
    pub(crate) fn listen(&self, topic: Topic) {
        self.wake.listen(topic, &self.published, &self.stored);
    }
}
