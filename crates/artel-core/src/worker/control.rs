//! [`WorkerControl`]: what remote control (Celery's `inspect` and `control`) may see of a
//! running worker and ask of it.

use std::fmt;
use std::sync::Arc;

use super::stats::WorkerStats;

/// A task running now, as `inspect active` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveTask {
    /// Task id.
    pub id: String,
    /// Task name.
    pub name: String,
    /// Printable positional arguments.
    pub args: String,
    /// Printable keyword arguments.
    pub kwargs: String,
    /// When it started (unix seconds).
    pub started: f64,
    /// The routing key it was delivered with.
    pub routing_key: String,
    /// Its priority.
    pub priority: u8,
}

/// A running worker, as remote control sees it.
pub trait WorkerControl: Send + Sync + fmt::Debug {
    /// Live counters and timings.
    fn stats(&self) -> Arc<WorkerStats>;

    /// The tasks running now.
    fn active(&self) -> Vec<ActiveTask>;

    /// Names of the tasks this worker runs, sorted.
    fn registered(&self) -> Vec<String>;

    /// The queues consumed.
    fn queues(&self) -> &[String];

    /// Tasks run at once.
    fn concurrency(&self) -> usize;

    /// Messages fetched ahead.
    fn prefetch(&self) -> usize;

    /// Revokes tasks in this worker at once (a broadcast reached it): they will not run,
    /// and with `terminate` running ones stop.
    fn revoke(&self, ids: &[String], terminate: bool);

    /// Ids this worker will not run.
    fn revoked(&self) -> Vec<String>;
}
