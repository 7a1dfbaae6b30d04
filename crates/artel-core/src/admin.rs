//! What a broker may offer operators, each its own capability: reading queues and dead
//! letters ([`Inspect`]: `artel queues`, `artel dead list`, burst workers), tidying them
//! ([`Control`]: `artel dead retry|purge`), and where workers report ([`WorkerRegistry`]:
//! `artel stats`).

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::broker::BrokerResult;

/// Message counts of one queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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

impl QueueCounts {
    /// Per queue, sorted by name: `live` (queue, ready, delayed, leased) rows and `dead`
    /// (queue, dead-lettered) rows, as databases count them apart.
    pub fn tally(live: Vec<(String, u64, u64, u64)>, dead: Vec<(String, u64)>) -> Vec<Self> {
        let mut counts: Vec<Self> = live
            .into_iter()
            .map(|(queue, ready, delayed, leased)| Self { queue, ready, delayed, leased, dead: 0 })
            .collect();
        for (queue, n) in dead {
            match counts.iter_mut().find(|c| c.queue == queue) {
                Some(c) => c.dead = n,
                None => counts.push(Self { queue, dead: n, ..Default::default() }),
            }
        }
        counts.sort_by(|a, b| a.queue.cmp(&b.queue));
        counts
    }
}

/// A dead-lettered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadMessage {
    /// The broker's id for the entry.
    pub id: String,
    /// Queue it came from.
    pub queue: String,
    /// Its task id.
    pub task_id: String,
    /// Why it was rejected.
    pub reason: String,
    /// When, in unix milliseconds.
    pub died_at_ms: i64,
    /// How many times it had been delivered (0 when the broker does not count).
    pub deliveries: u32,
}

impl DeadMessage {
    /// A dead letter as databases keep it: (id, queue, task id, reason, died at ms,
    /// deliveries).
    pub fn from_row(
        (id, queue, task_id, reason, died_at_ms, deliveries): (i64, String, String, String, i64, u32),
    ) -> Self {
        Self { id: id.to_string(), queue, task_id, reason, died_at_ms, deliveries }
    }
}

/// What a worker last reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerReport {
    /// The worker's node name.
    pub name: String,
    /// Its last heartbeat, in unix milliseconds.
    pub heartbeat_at_ms: i64,
    /// Its counters and timings (`WorkerStats::to_json`).
    pub stats: Value,
}

impl WorkerReport {
    /// A report as databases keep it: (name, heartbeat at ms, stats JSON); stats that do
    /// not parse read as null.
    pub fn from_row((name, heartbeat_at_ms, stats): (String, i64, String)) -> Self {
        Self { name, heartbeat_at_ms, stats: serde_json::from_str(&stats).unwrap_or(Value::Null) }
    }
}

/// A worker counts as alive while its last report is at most this old (it reports every
/// 2 s).
pub const ALIVE_MS: i64 = 10_000;

impl WorkerReport {
    /// Whether the worker reported recently enough, at `now_ms`, to count as alive.
    pub fn is_alive(&self, now_ms: i64) -> bool {
        now_ms - self.heartbeat_at_ms <= ALIVE_MS
    }
}

/// Reading what a broker holds.
#[async_trait]
pub trait Inspect: Send + Sync + fmt::Debug {
    /// Messages of `queue` not yet acknowledged — ready, delayed or held by a consumer —
    /// counting at most `up_to` (so `unfinished(q, 1) == 0` is a cheap emptiness check).
    async fn unfinished(&self, queue: &str, up_to: u64) -> BrokerResult<u64>;
    /// Counts of every queue that has messages or dead letters, by name.
    async fn queue_counts(&self) -> BrokerResult<Vec<QueueCounts>>;
    /// Dead letters (of `queue`, or all), oldest first, at most `limit`.
    async fn dead_list(&self, queue: Option<&str>, limit: usize) -> BrokerResult<Vec<DeadMessage>>;
}

/// Tidying what a broker holds.
#[async_trait]
pub trait Control: Send + Sync + fmt::Debug {
    /// Puts dead letters (of `queue`, or all) back on their queues; returns how many.
    async fn dead_retry(&self, queue: Option<&str>) -> BrokerResult<u64>;
    /// Deletes dead letters (of `queue`, or all); returns how many.
    async fn dead_purge(&self, queue: Option<&str>) -> BrokerResult<u64>;
}

/// Where workers report, for `artel stats`.
#[async_trait]
pub trait WorkerRegistry: Send + Sync + fmt::Debug {
    /// Records a worker's heartbeat and stats; true when someone asked it to stop since
    /// its last report ([`WorkerRegistry::request_stop`]): it should stop now (warm).
    async fn report_worker(&self, name: &str, stats: &Value) -> BrokerResult<bool>;
    /// Asks worker `name` to stop at its next report; false when no such worker reports.
    async fn request_stop(&self, name: &str) -> BrokerResult<bool>;
    /// Forgets a worker that stopped.
    async fn worker_gone(&self, name: &str) -> BrokerResult<()>;
    /// Every worker's last report, by name.
    async fn workers(&self) -> BrokerResult<Vec<WorkerReport>>;
}
