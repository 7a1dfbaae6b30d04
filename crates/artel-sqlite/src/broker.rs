//! [`SqliteBroker`]: publishing, consuming and inspecting queues in one SQLite file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use artel_core::{Broker, BrokerError, BrokerErrorKind, BrokerResult, Clock, Consumer, Inspect, Message, SystemClock};
use async_trait::async_trait;
use tokio::sync::Notify;

use crate::consumer::SqliteConsumer;
use crate::db::Db;
use crate::queries::{self, NewMessage};

/// Timing settings of a [`SqliteBroker`].
#[derive(Debug, Clone, Copy)]
pub struct SqliteConfig {
    /// How long a claimed message stays hidden without a heartbeat; after it lapses the
    /// message is delivered again (a crashed worker's tasks come back after this).
    pub lease: Duration,
    /// How often an idle consumer looks for messages published by other processes.
    pub poll_interval: Duration,
    /// How many tasks that failed for good are kept per queue for `artel failed`.
    pub failed_kept: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(50),
            failed_kept: artel_core::FAILED_KEPT,
        }
    }
}

/// Broker and result backend on one SQLite file; clones share one connection thread.
#[derive(Debug, Clone)]
pub struct SqliteBroker {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) db: Db,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: SqliteConfig,
    /// Wakes this process's consumers at once on a local publish.
    pub(crate) published: Notify,
    /// Wakes this process's result waiters at once on a local store.
    pub(crate) stored: Notify,
    /// When this broker last deleted expired results (unix ms).
    pub(crate) last_sweep_ms: std::sync::atomic::AtomicI64,
}

impl Shared {
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }
}

impl SqliteBroker {
    /// Opens (creating if needed) the database file at `path` with default timings.
    pub fn open(path: impl AsRef<Path>) -> BrokerResult<Self> {
        Self::open_with(path, SqliteConfig::default(), Arc::new(SystemClock))
    }

    /// Opens with explicit timings and clock.
    pub fn open_with(path: impl AsRef<Path>, config: SqliteConfig, clock: Arc<dyn Clock>) -> BrokerResult<Self> {
        let db = Db::open(path.as_ref())?;
        let shared = Shared {
            db,
            clock,
            config,
            published: Notify::new(),
            stored: Notify::new(),
            last_sweep_ms: Default::default(),
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.shared.db.path()
    }
}

#[async_trait]
impl Broker for SqliteBroker {
    fn store_identity(&self) -> Option<usize> {
        Some(std::sync::Arc::as_ptr(&self.shared) as usize)
    }

    async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()> {
        let now = self.shared.now_ms();
        let queue = queue.to_owned();
        let rows: Vec<(u8, i64, String, Vec<u8>)> = messages
            .iter()
            .map(|m| {
                let visible_at = m.headers.eta.map_or(now, |eta| eta.timestamp_millis().max(now));
                (m.properties.priority.min(9), visible_at, m.headers.id.clone(), m.to_envelope())
            })
            .collect();
        self.shared
            .db
            .call("publishing messages", move |tx| {
                for (priority, visible_at, task_id, envelope) in &rows {
                    let row =
                        NewMessage { queue: &queue, priority: *priority, visible_at: *visible_at, task_id, envelope };
                    queries::insert_message(tx, &row)?;
                }
                Ok(())
            })
            .await?;
        self.shared.published.notify_waiters();
        Ok(())
    }

    async fn consume(&self, queues: &[String], prefetch: usize) -> BrokerResult<Box<dyn Consumer>> {
        if queues.is_empty() {
            return Err(BrokerError::new(BrokerErrorKind::Other, "consume needs at least one queue name"));
        }
        Ok(Box::new(SqliteConsumer::new(self.shared.clone(), queues.to_vec(), prefetch.max(1))))
    }

    async fn len(&self, queue: &str) -> BrokerResult<u64> {
        let (queue, now) = (queue.to_owned(), self.shared.now_ms());
        self.shared.db.call("counting a queue", move |tx| queries::count_ready(tx, &queue, now)).await
    }

    async fn purge(&self, queue: &str) -> BrokerResult<u64> {
        let (queue, now) = (queue.to_owned(), self.shared.now_ms());
        Ok(self.shared.db.call("purging a queue", move |tx| queries::purge(tx, &queue, now)).await? as u64)
    }
}

#[async_trait]
impl Inspect for SqliteBroker {
    async fn unfinished(&self, queue: &str, up_to: u64) -> BrokerResult<u64> {
        let queue = queue.to_owned();
        self.shared.db.call("counting unfinished messages", move |tx| queries::pending(tx, &queue, up_to)).await
    }
}
