//! [`Handle`]: the future-like result of a submitted job.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;

use crate::cell::{Cell, Outcome, Signal, Status};
use crate::error::JobError;

/// The result of a submitted job: `.await` it, or `wait()` for it from sync code.
///
/// Dropping a handle does not cancel the job (as with concurrent.futures);
/// call [`Handle::cancel`] for that.
pub struct Handle<T> {
    pub(crate) cell: Arc<Cell<T>>,
    /// Aborts the job's task; `None` for jobs that cannot be stopped once running.
    abort_running: Option<AbortHandle>,
    abort_pending: Option<AbortHandle>,
}

impl<T> Handle<T> {
    pub(crate) fn new(cell: Arc<Cell<T>>, task: AbortHandle, abortable_while_running: bool) -> Self {
        let abort_running = abortable_while_running.then(|| task.clone());
        Self { cell, abort_running, abort_pending: Some(task) }
    }

    /// A handle that is already finished with `error` (a rejected `map` item).
    pub(crate) fn failed(error: JobError) -> Self {
        Self { cell: Cell::finished(Err(error)), abort_running: None, abort_pending: None }
    }

    /// Where the job is now.
    pub fn status(&self) -> Status {
        self.cell.status()
    }

    /// Whether the job has finished (succeeded, failed or cancelled).
    pub fn is_done(&self) -> bool {
        self.status().is_done()
    }

    /// Cancels the job; returns whether it is now cancelled.
    ///
    /// A pending job never runs. A running async job is stopped at its next `.await`;
    /// a running blocking job cannot be stopped, so this returns false for it.
    pub fn cancel(&self) -> bool {
        let running_too = self.abort_running.is_some();
        let was_pending = self.cell.status() == Status::Pending;
        let cancelled = self.cell.cancel(running_too);
        if cancelled {
            let abort = if was_pending { &self.abort_pending } else { &self.abort_running };
            if let Some(task) = abort {
                task.abort();
            }
        }
        cancelled
    }

    /// Calls `callback` with the outcome when the job finishes, or now if it has.
    ///
    /// The callback runs on the thread that finishes the job, so keep it short; it must
    /// not wait on this same handle. Callbacks added after the value was taken are not called.
    pub fn on_done(&self, callback: impl FnOnce(&Result<T, JobError>) + Send + 'static) {
        self.cell.on_done(Box::new(callback));
    }

    /// Blocks the current thread until the job finishes.
    ///
    /// Do not call this on a single-threaded runtime that must run the job itself.
    pub fn wait(mut self) -> Result<T, JobError> {
        match self.wait_until(None) {
            Some(outcome) => outcome,
            None => Err(JobError::Cancelled),
        }
    }

    /// Blocks up to `timeout`; `None` when the job has not finished by then, leaving
    /// the handle usable for another wait (concurrent.futures' `result(timeout)`).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<Result<T, JobError>> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> Option<Outcome<T>> {
        if let Some(outcome) = self.cell.try_take() {
            return Some(outcome);
        }
        let signal = Arc::new(Signal::default());
        self.cell.watch(&signal, 0);
        signal.pop_blocking(deadline)?;
        self.cell.try_take()
    }
}

impl<T> Future for Handle<T> {
    type Output = Result<T, JobError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.cell.poll_take(cx)
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("status", &self.status()).finish()
    }
}
