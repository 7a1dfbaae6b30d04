//! Why a job has no value.

use crate::BoxError;

/// A job ended without a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The job returned an error (only for `submit_fallible`/`map_fallible` jobs).
    #[error("job failed: {0}")]
    Failed(#[source] BoxError),
    /// The job panicked; the pool caught it and kept running.
    #[error("job panicked: {0}")]
    Panicked(String),
    /// The job was cancelled before it finished.
    #[error("job was cancelled before it finished")]
    Cancelled,
    /// The process running the job died before answering (abort, segfault, killed for
    /// memory): Celery's `WorkerLostError`. The pool replaced the process.
    #[error("WorkerLostError: {0}")]
    WorkerLost(String),
    /// The job ran past its time limit and its process was killed.
    #[error("TimeLimitExceeded: the job ran past its time limit ({0:?}); its process was killed")]
    TimedOut(std::time::Duration),
    /// The job was never accepted.
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

impl JobError {
    /// Whether this counts as an exception for `ReturnWhen::FirstException`
    /// (a failure, panic, lost process or time limit; cancellation does not count, as in
    /// concurrent.futures).
    pub fn is_exception(&self) -> bool {
        matches!(self, JobError::Failed(_) | JobError::Panicked(_) | JobError::WorkerLost(_) | JobError::TimedOut(_))
    }
}

/// A submission the pool refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejected {
    /// `max_backlog` jobs are already waiting for a slot.
    #[error("rejected: {limit} jobs are already waiting (max_backlog); retry later or raise the limit")]
    Backlog {
        /// The configured backlog limit.
        limit: usize,
    },
    /// The pool is shutting down or shut down.
    #[error("rejected: the pool is shut down")]
    ShutDown,
}
