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
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self { lease: Duration::from_secs(30), poll_interval: Duration::from_millis(50) }
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

/// Message counts of one queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// The queue name.
    pub queue: String,
    /// Ready to run now.
    pub ready: u64,
    /// Waiting for their ETA.
    pub delayed: u64,
    /// Held by a worker (running or prefetched).
    pub leased: u64,
    /// Dead-lettered.
    pub dead: u64,
}

/// A dead-lettered message, as listed by [`SqliteBroker::dead_list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadMessage {
    /// Row id.
    pub id: i64,
    /// Queue it came from.
    pub queue: String,
    /// Its task id.
    pub task_id: String,
    /// Why it was rejected.
    pub reason: String,
    /// When, in unix milliseconds.
    pub died_at_ms: i64,
    /// How many times it had been delivered.
    pub deliveries: u32,
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

    /// Counts per queue, including queues that only have dead messages.
    pub async fn queue_counts(&self) -> BrokerResult<Vec<QueueCounts>> {
        let now = self.shared.now_ms();
        let (live, dead) = self
            .shared
            .db
            .call("counting queues", move |tx| Ok((queries::count_by_queue(tx, now)?, queries::dead_by_queue(tx)?)))
            .await?;
        let mut counts: Vec<QueueCounts> = live
            .into_iter()
            .map(|(queue, ready, delayed, leased)| QueueCounts { queue, ready, delayed, leased, dead: 0 })
            .collect();
        for (queue, n) in dead {
            match counts.iter_mut().find(|c| c.queue == queue) {
                Some(c) => c.dead = n,
                None => counts.push(QueueCounts { queue, dead: n, ..Default::default() }),
            }
        }
        counts.sort_by(|a, b| a.queue.cmp(&b.queue));
        Ok(counts)
    }

    /// Dead-lettered messages, oldest first (of one queue, or all).
    pub async fn dead_list(&self, queue: Option<&str>, limit: usize) -> BrokerResult<Vec<DeadMessage>> {
        let queue = queue.map(str::to_owned);
        let rows = self
            .shared
            .db
            .call("listing dead messages", move |tx| queries::dead_list(tx, queue.as_deref(), limit))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, queue, task_id, reason, died_at_ms, deliveries)| DeadMessage {
                id,
                queue,
                task_id,
                reason,
                died_at_ms,
                deliveries,
            })
            .collect())
    }

    /// Puts dead messages back on their queues; returns how many.
    pub async fn dead_retry(&self, queue: Option<&str>) -> BrokerResult<u64> {
        let (queue, now) = (queue.map(str::to_owned), self.shared.now_ms());
        let n = self
            .shared
            .db
            .call("retrying dead messages", move |tx| queries::dead_retry(tx, queue.as_deref(), now))
            .await?;
        self.shared.published.notify_waiters();
        Ok(n as u64)
    }

    /// Deletes dead messages; returns how many.
    pub async fn dead_purge(&self, queue: Option<&str>) -> BrokerResult<u64> {
        let queue = queue.map(str::to_owned);
        let n =
            self.shared.db.call("purging dead messages", move |tx| queries::dead_purge(tx, queue.as_deref())).await?;
        Ok(n as u64)
    }

    /// Records a worker's heartbeat and stats (JSON) for `artel stats`.
    pub async fn worker_heartbeat(&self, name: &str, stats: &serde_json::Value) -> BrokerResult<()> {
        let (name, stats, now) = (name.to_owned(), stats.to_string(), self.shared.now_ms());
        self.shared
            .db
            .call("recording a worker heartbeat", move |tx| queries::worker_upsert(tx, &name, now, &stats))
            .await
    }

    /// Removes a worker that stopped cleanly.
    pub async fn worker_gone(&self, name: &str) -> BrokerResult<()> {
        let name = name.to_owned();
        self.shared.db.call("removing a worker", move |tx| queries::worker_delete(tx, &name)).await
    }

    /// Workers that reported: (name, last heartbeat in unix ms, stats JSON).
    pub async fn workers(&self) -> BrokerResult<Vec<(String, i64, serde_json::Value)>> {
        let rows = self.shared.db.call("listing workers", queries::worker_list).await?;
        Ok(rows
            .into_iter()
            .map(|(name, at, stats)| (name, at, serde_json::from_str(&stats).unwrap_or(serde_json::Value::Null)))
            .collect())
    }
}

#[async_trait]
impl Broker for SqliteBroker {
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
