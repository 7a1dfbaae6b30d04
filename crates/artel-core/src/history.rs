//! [`TaskHistory`]: the optional capability behind the dashboard's task lists — a bounded
//! index of recent tasks by time and state, and finished-task counts per minute.
//!
//! Invariants a store keeps:
//! - one record per task id, replaced by each newer record of that task (a worker writes
//!   the whole record each time, never a patch);
//! - at most about [`HISTORY_KEPT`] records: the least recently updated go first, so
//!   listing never scans more than that whatever the store holds;
//! - per-minute counts of SUCCESS and FAILURE records for [`MINUTES_KEPT`] minutes, so the
//!   overview's throughput costs one read of at most that many rows.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::broker::BrokerResult;
use crate::state::State;

/// How many task records a store keeps by default.
pub const HISTORY_KEPT: u32 = 100_000;

/// How many minutes of throughput a store keeps (a day).
pub const MINUTES_KEPT: i64 = 24 * 60;

/// What is known of one task: its latest state and where it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task id.
    pub task_id: String,
    /// The task's name ("" when its message could not be read).
    pub task: String,
    /// The queue it was consumed from.
    pub queue: String,
    /// Its latest state.
    pub state: State,
    /// The worker that last handled it.
    pub worker: String,
    /// Its arguments and keyword arguments as the producer showed them, shortened.
    #[serde(default)]
    pub args: String,
    /// Why it failed, was retried or rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many times it had been retried.
    #[serde(default)]
    pub retries: u32,
    /// Its chain or workflow parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The first task of its workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_id: Option<String>,
    /// When the producer sent it, in unix milliseconds, where it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at_ms: Option<i64>,
    /// When a worker took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at_ms: Option<i64>,
    /// When its (latest) run began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<i64>,
    /// When this record was written: the time of `state`.
    pub updated_at_ms: i64,
    /// How long its run took, once it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_ms: Option<u64>,
}

impl TaskRecord {
    /// What is known of task `task_id` before anything is: PENDING at `at_ms`, handled by
    /// `worker`, every other field empty.
    pub fn new(task_id: &str, worker: &str, at_ms: i64) -> Self {
        Self {
            task_id: task_id.to_owned(),
            task: String::new(),
            queue: String::new(),
            state: State::Pending,
            worker: worker.to_owned(),
            args: String::new(),
            error: None,
            retries: 0,
            parent_id: None,
            root_id: None,
            sent_at_ms: None,
            received_at_ms: None,
            started_at_ms: None,
            updated_at_ms: at_ms,
            runtime_ms: None,
        }
    }
}

/// `records` with only the last of each task, in order: what a batch leaves behind.
pub fn latest_per_task(records: &[TaskRecord]) -> Vec<&TaskRecord> {
    let last: std::collections::HashMap<&str, usize> =
        records.iter().enumerate().map(|(i, record)| (record.task_id.as_str(), i)).collect();
    records
        .iter()
        .enumerate()
        .filter(|(i, record)| last.get(record.task_id.as_str()) == Some(i))
        .map(|(_, r)| r)
        .collect()
}

/// Which records to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Only those in this state.
    pub state: Option<State>,
    /// Only this task's.
    pub task: Option<String>,
    /// Only this queue's.
    pub queue: Option<String>,
    /// Only those updated at or after this time (unix milliseconds).
    pub since_ms: Option<i64>,
    /// At most this many, most recently updated first.
    pub limit: usize,
}

impl TaskFilter {
    /// Whether `record` passes the filter (the limit aside).
    pub fn admits(&self, record: &TaskRecord) -> bool {
        self.state.is_none_or(|s| s == record.state)
            && self.task.as_ref().is_none_or(|t| *t == record.task)
            && self.queue.as_ref().is_none_or(|q| *q == record.queue)
            && self.since_ms.is_none_or(|since| record.updated_at_ms >= since)
    }
}

/// Tasks that finished in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Minute {
    /// The minute's start, in unix milliseconds.
    pub at_ms: i64,
    /// Records that reached SUCCESS in it.
    pub succeeded: u64,
    /// Records that reached FAILURE in it.
    pub failed: u64,
}

impl Minute {
    /// The start of the minute holding `at_ms`.
    pub fn start(at_ms: i64) -> i64 {
        at_ms - at_ms.rem_euclid(60_000)
    }

    /// The finished records of `records` (SUCCESS, FAILURE) counted in their minutes,
    /// oldest minute first; minutes with nothing finished are left out.
    pub fn tally<'a>(records: impl IntoIterator<Item = &'a TaskRecord>) -> Vec<Minute> {
        let mut minutes: std::collections::BTreeMap<i64, Minute> = std::collections::BTreeMap::new();
        for record in records {
            let (succeeded, failed) = match record.state {
                State::Success => (1, 0),
                State::Failure => (0, 1),
                _ => continue,
            };
            let at_ms = Minute::start(record.updated_at_ms);
            let minute = minutes.entry(at_ms).or_insert(Minute { at_ms, ..Minute::default() });
            minute.succeeded += succeeded;
            minute.failed += failed;
        }
        minutes.into_values().collect()
    }
}

/// Recording and listing recent tasks.
#[async_trait]
pub trait TaskHistory: Send + Sync + std::fmt::Debug {
    /// Stores `records`, each replacing its task's earlier record, counts the finished
    /// ones in their minutes, and drops the oldest beyond the store's bound.
    async fn record(&self, records: &[TaskRecord]) -> BrokerResult<()>;

    /// Records passing `filter`, most recently updated first.
    async fn recent(&self, filter: &TaskFilter) -> BrokerResult<Vec<TaskRecord>>;

    /// The record of `task_id`, while it is kept.
    async fn find(&self, task_id: &str) -> BrokerResult<Option<TaskRecord>>;

    /// Finished-task counts of the minutes at or after `since_ms`, oldest first; minutes
    /// with nothing finished are left out.
    async fn throughput(&self, since_ms: i64) -> BrokerResult<Vec<Minute>>;
}
