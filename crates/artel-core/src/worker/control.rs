//! [`WorkerControl`]: what remote control (Celery's `inspect` and `control`) may see of a
//! running worker and ask of it.

use std::fmt;
use std::sync::Arc;

use super::stats::WorkerStats;
use crate::broker::HeldTask;

/// A task running now, as `inspect active` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveTask {
    /// What its message shows of it.
    pub task: HeldTask,
    /// When it started (unix seconds).
    pub started: f64,
}

/// Why a task's settings could not be changed by remote control.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TuneError {
    /// This worker does not run the task (Celery's words).
    #[error("unknown task")]
    UnknownTask,
    /// The value given is not one (a rate that is not `N/s`, `N/m`, `N/h` or `N`...).
    #[error("{0}")]
    Invalid(String),
}

/// A worker's child processes, for `inspect stats` (Celery's `pool.processes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessesInfo {
    /// Pids of the children alive now.
    pub pids: Vec<u32>,
    /// How many may run at once.
    pub size: usize,
    /// Calls after which a child is replaced, if set.
    pub max_tasks_per_child: Option<u32>,
}

/// A running worker, as remote control sees it.
pub trait WorkerControl: Send + Sync + fmt::Debug {
    /// Live counters and timings.
    fn stats(&self) -> Arc<WorkerStats>;

    /// The tasks running now.
    fn active(&self) -> Vec<ActiveTask>;

    /// Received, not started: prefetched, or waiting for a rate limit.
    fn reserved(&self) -> Vec<HeldTask>;

    /// Received, waiting for their ETA.
    fn scheduled(&self) -> Vec<HeldTask>;

    /// Names of the tasks this worker runs, sorted.
    fn registered(&self) -> Vec<String>;

    /// The queues consumed now.
    fn queues(&self) -> Vec<String>;

    /// Starts consuming `queue` too (Celery's `add_consumer`); false when it already was.
    fn add_queue(&self, queue: &str) -> bool;

    /// Stops consuming `queue` (Celery's `cancel_consumer`): what was prefetched from it
    /// goes back, running tasks finish; false when it was not consumed.
    fn cancel_queue(&self, queue: &str) -> bool;

    /// This worker's settings under Celery's names (`worker_concurrency`,
    /// `task_time_limit`, ...), for `inspect conf`; nothing secret.
    fn conf(&self) -> serde_json::Map<String, serde_json::Value>;

    /// Tasks run at once.
    fn concurrency(&self) -> usize;

    /// Messages fetched ahead.
    fn prefetch(&self) -> usize;

    /// Revokes tasks in this worker at once (a broadcast reached it): they will not run,
    /// and with `terminate` running ones stop.
    fn revoke(&self, ids: &[String], terminate: bool);

    /// Ids this worker will not run.
    fn revoked(&self) -> Vec<String>;

    /// Sets (`None`, `0`: turns off) `task`'s rate limit in this worker, over the one it
    /// declares (Celery's `rate_limit`), or says why not (an unknown task, a rate that is
    /// not `N/s`, `N/m`, `N/h` or `N`).
    fn set_rate_limit(&self, task: &str, rate: Option<&str>) -> Result<(), TuneError>;

    /// Sets `task`'s soft and hard time limits in seconds in this worker (Celery's
    /// `time_limit`), or why not.
    fn set_time_limits(&self, task: &str, soft: Option<f64>, hard: Option<f64>) -> Result<(), TuneError>;

    /// Its child processes, when it runs tasks in them.
    fn processes(&self) -> Option<ProcessesInfo> {
        None
    }

    /// Grows (positive `delta`) or shrinks how many tasks run at once, never below one,
    /// and its child processes with them (Celery's `pool_grow` and `pool_shrink`); the
    /// new size. A shrink takes effect as running tasks end.
    fn resize(&self, delta: i64) -> usize;
}
