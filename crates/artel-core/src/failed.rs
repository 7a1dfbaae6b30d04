//! [`FailedTasks`]: the optional capability behind `artel failed` — a bounded record of
//! tasks that failed for good, to be looked at and run again (RQ's failed job registry).
//!
//! A broker with the capability records a failure in the same step as the message's
//! acknowledgement ([`crate::Acknowledge::ack_failed`]), keeping the message's envelope
//! so it can be published again; it keeps the newest [`FAILED_KEPT`] per queue.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::broker::BrokerResult;

/// How many failures a broker keeps per queue by default; older ones are dropped.
pub const FAILED_KEPT: u32 = 10_000;

/// Longest argument preview kept with a failure, in characters.
pub const ARGS_PREVIEW: usize = 200;

/// A task that failed for good (FAILURE after its retries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedTask {
    /// The task id (also its result key).
    pub task_id: String,
    /// The task's name.
    pub task: String,
    /// The queue it was consumed from.
    pub queue: String,
    /// Its arguments, shortened to [`ARGS_PREVIEW`] characters.
    pub args: String,
    /// The error, with its exception name.
    pub error: String,
    /// The worker that ran it last.
    pub worker: String,
    /// When it failed, in unix milliseconds.
    pub failed_at_ms: i64,
    /// How many times it ran (retries + 1).
    pub attempts: u32,
}

impl FailedTask {
    /// A failure as stores keep it, JSON.
    pub fn decode(entry: &[u8]) -> crate::BrokerResult<Self> {
        serde_json::from_slice(entry).map_err(|e| {
            crate::BrokerError::new(crate::BrokerErrorKind::Corrupt, "a failed-task record is not valid JSON")
                .with_source(e)
        })
    }

    /// `args` shortened to [`ARGS_PREVIEW`] characters, marked with `…` when cut.
    pub fn preview(args: &str) -> String {
        match args.char_indices().nth(ARGS_PREVIEW) {
            Some((cut, _)) => format!("{}…", &args[..cut]),
            None => args.to_owned(),
        }
    }
}

/// Which failures to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailedFilter {
    /// Only this queue's.
    pub queue: Option<String>,
    /// Only this task's.
    pub task: Option<String>,
    /// Only those at or after this time (unix milliseconds).
    pub since_ms: Option<i64>,
    /// At most this many, newest first.
    pub limit: usize,
}

impl FailedFilter {
    /// Whether `failure` passes the filter (the limit aside).
    pub fn admits(&self, failure: &FailedTask) -> bool {
        self.queue.as_ref().is_none_or(|q| *q == failure.queue)
            && self.task.as_ref().is_none_or(|t| *t == failure.task)
            && self.since_ms.is_none_or(|since| failure.failed_at_ms >= since)
    }
}

/// Listing and re-running recorded failures.
#[async_trait]
pub trait FailedTasks: Send + Sync + std::fmt::Debug {
    /// Recorded failures passing `filter`, newest first.
    async fn failed_list(&self, filter: &FailedFilter) -> BrokerResult<Vec<FailedTask>>;

    /// Publishes the failures of `task_ids` (all when `None`) again, with their retry
    /// count reset and their stored results forgotten (PENDING until the new run ends),
    /// and removes them from the record; returns how many were published.
    async fn failed_retry(&self, task_ids: Option<&[String]>) -> BrokerResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_argument_list_is_cut_at_the_preview_length() {
        assert_eq!(FailedTask::preview("[1, 2]"), "[1, 2]");
        let long = "é".repeat(ARGS_PREVIEW + 5);
        let cut = FailedTask::preview(&long);
        assert_eq!(cut.chars().count(), ARGS_PREVIEW + 1, "the preview and the mark");
        assert!(cut.ends_with('…'));
    }
}
