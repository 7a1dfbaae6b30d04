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
    /// The job was never accepted.
    #[error(transparent)]
    Rejected(#[from] Rejected),
}

impl JobError {
    /// Whether this counts as an exception for `ReturnWhen::FirstException`
    /// (a failure or panic; cancellation does not count, as in concurrent.futures).
    pub fn is_exception(&self) -> bool {
        matches!(self, JobError::Failed(_) | JobError::Panicked(_))
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
