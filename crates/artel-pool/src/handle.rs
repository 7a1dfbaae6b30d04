//! [`Handle`]: the future-like result of a submitted job.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::sync::Weak;

use crate::cell::{Cell, Outcome, Signal, Status};
use crate::error::JobError;
use crate::executor::Job;

/// The result of a submitted job: `.await` it, or `wait()` for it from sync code.
///
/// Dropping a handle does not cancel the job (as with concurrent.futures);
/// call [`Handle::cancel`] for that.
///
/// ```
/// use std::time::Duration;
///
/// let pool = artel_pool::Pool::new()?;
/// let mut slow = pool.submit(async {
///     tokio::time::sleep(Duration::from_secs(60)).await;
/// })?;
/// slow.on_done(|outcome| assert!(outcome.is_err(), "cancelled"));
/// assert!(slow.wait_timeout(Duration::from_millis(10)).is_none(), "still running");
/// assert!(slow.cancel(), "an async job stops at its next .await");
/// assert!(matches!(slow.wait(), Err(artel_pool::JobError::Cancelled)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Handle<T> {
    pub(crate) cell: Arc<Cell<T>>,
    /// The job, to have its body dropped promptly on cancel; weak so a kept handle does
    /// not keep a finished job alive.
    job: Weak<Job>,
    /// Whether a running job can be stopped (async jobs can, thread jobs cannot).
    abortable: bool,
}

impl<T> Handle<T> {
    pub(crate) fn new(cell: Arc<Cell<T>>, job: &Arc<Job>, abortable: bool) -> Self {
        Self { cell, job: Arc::downgrade(job), abortable }
    }

    /// A handle that is already finished with `error` (a rejected `map` item).
    pub(crate) fn failed(error: JobError) -> Self {
        Self { cell: Cell::finished(Err(error)), job: Weak::new(), abortable: false }
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
        let cancelled = self.cell.cancel(self.abortable);
        if cancelled {
            if let Some(job) = self.job.upgrade() {
                job.reap();
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
