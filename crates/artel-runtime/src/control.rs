//! [`WorkerControl`]: what remote control (Celery's `inspect` and `control`) may see of a
//! running worker and ask of it.

use std::sync::Arc;

use artel_core::Revocation;

use crate::execute::Dispatcher;
use crate::stats::WorkerStats;

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

/// A handle on a worker for remote control; cheap to clone.
#[derive(Debug, Clone)]
pub struct WorkerControl {
    pub(crate) executor: Arc<Dispatcher>,
    pub(crate) queues: Vec<String>,
    pub(crate) concurrency: usize,
    pub(crate) prefetch: usize,
}

impl WorkerControl {
    /// Live counters and timings.
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.executor.stats.clone()
    }

    /// The tasks running now.
    pub fn active(&self) -> Vec<ActiveTask> {
        self.executor.active.list()
    }

    /// Names of the tasks this worker runs, sorted.
    pub fn registered(&self) -> Vec<String> {
        self.executor.registry.names().into_iter().map(str::to_owned).collect()
    }

    /// The queues consumed.
    pub fn queues(&self) -> &[String] {
        &self.queues
    }

    /// Tasks run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Messages fetched ahead.
    pub fn prefetch(&self) -> usize {
        self.prefetch
    }

    /// Revokes tasks in this worker at once (a broadcast reached it): they will not run,
    /// and with `terminate` running ones stop.
    pub fn revoke(&self, ids: &[String], terminate: bool) {
        let expires_at = self.executor.clock.now() + chrono::Duration::days(1);
        let revocations =
            ids.iter().map(|id| Revocation { task_id: id.clone(), terminate, expires_at }).collect::<Vec<_>>();
        let terminate = self.executor.revoked.apply(revocations, self.executor.clock.now());
        self.executor.active.terminate(&terminate);
    }

    /// Ids this worker will not run.
    pub fn revoked(&self) -> Vec<String> {
        self.executor.revoked.ids()
    }
}
