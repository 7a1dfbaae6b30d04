//! [`Pool`]: runs async jobs and blocking jobs with bounded concurrency and backlog.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::runtime::{Handle as RuntimeHandle, Runtime, RuntimeFlavor};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::BoxError;
use crate::catch_unwind::{CatchUnwind, panic_message};
use crate::cell::{Cell, Outcome};
use crate::error::{JobError, Rejected};
use crate::handle::Handle;
use crate::live::Live;

/// A local executor: async jobs on tokio tasks, blocking jobs on threads, one futures API.
///
/// Dropping the pool shuts it down and waits for accepted jobs, like leaving a
/// `with ThreadPoolExecutor()` block; in async code call [`Pool::shutdown_async`] instead.
pub struct Pool {
    shared: Arc<Shared>,
    handle: RuntimeHandle,
    runtime: Option<Runtime>,
}

/// How to stop a pool.
#[derive(Debug, Clone, Copy)]
pub struct Shutdown {
    /// Wait for jobs that are running (and pending ones that are kept) to finish.
    pub wait: bool,
    /// Cancel jobs that have not started yet.
    pub cancel_pending: bool,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self { wait: true, cancel_pending: false }
    }
}

/// Counters of a pool since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Jobs accepted.
    pub submitted: u64,
    /// Jobs refused (backlog full or shut down).
    pub rejected: u64,
    /// Jobs that returned a value.
    pub succeeded: u64,
    /// Jobs that failed or panicked.
    pub failed: u64,
    /// Jobs cancelled before finishing.
    pub cancelled: u64,
    /// Jobs accepted and waiting for a slot now.
    pub pending: usize,
    /// Jobs accepted and not finished now.
    pub live: usize,
}

pub(crate) struct Shared {
    async_slots: Option<Arc<Semaphore>>,
    blocking_slots: Arc<Semaphore>,
    max_backlog: Option<usize>,
    pending: AtomicUsize,
    closed: AtomicBool,
    cancel_pending: CancellationToken,
    live: Live,
    submitted: AtomicU64,
    rejected: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
}

impl Shared {
    pub(crate) fn new(async_slots: Option<usize>, blocking_slots: usize, max_backlog: Option<usize>) -> Self {
        Self {
            async_slots: async_slots.map(|n| Arc::new(Semaphore::new(n))),
            blocking_slots: Arc::new(Semaphore::new(blocking_slots)),
            max_backlog,
            pending: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            cancel_pending: CancellationToken::new(),
            live: Live::default(),
            submitted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
        }
    }

    /// Accepts one more job or says why not.
    fn admit(self: &Arc<Self>) -> Result<(), Rejected> {
        let refuse = |why| {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            Err(why)
        };
        if self.closed.load(Ordering::Acquire) {
            return refuse(Rejected::ShutDown);
        }
        let pending = self.pending.fetch_add(1, Ordering::AcqRel);
        if let Some(limit) = self.max_backlog {
            if pending >= limit {
                self.pending.fetch_sub(1, Ordering::AcqRel);
                return refuse(Rejected::Backlog { limit });
            }
        }
        self.live.enter();
        self.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn record<T>(&self, outcome: &Outcome<T>) {
        let counter = match outcome {
            Ok(_) => &self.succeeded,
            Err(JobError::Cancelled | JobError::Rejected(_)) => &self.cancelled,
            Err(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One accepted job's bookkeeping: leaves the backlog when started, leaves the live set
/// when dropped, and cancels the job's cell if the job is dropped unfinished (aborted or
/// the runtime went away) so no waiter hangs.
struct Admission<T> {
    shared: Arc<Shared>,
    cell: Arc<Cell<T>>,
    started: bool,
    finished: bool,
}

impl<T> Admission<T> {
    fn start(&mut self) -> bool {
        self.pending_done();
        self.cell.start()
    }

    fn pending_done(&mut self) {
        if !self.started {
            self.started = true;
            self.shared.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn finish(&mut self, outcome: Outcome<T>) {
        self.finished = true;
        self.shared.record(&outcome);
        self.cell.finish(outcome);
    }
}

impl<T> Drop for Admission<T> {
    fn drop(&mut self) {
        self.pending_done();
        if !self.finished {
            self.shared.cancelled.fetch_add(1, Ordering::Relaxed);
            self.cell.finish(Err(JobError::Cancelled));
        }
        self.shared.live.exit();
    }
}

impl Pool {
    /// A pool with default settings (see [`PoolBuilder`]).
    pub fn new() -> std::io::Result<Self> {
        Self::builder().build()
    }

    /// Configures a pool.
    pub fn builder() -> crate::PoolBuilder {
        crate::PoolBuilder::default()
    }

    pub(crate) fn from_parts(shared: Shared, handle: RuntimeHandle, runtime: Option<Runtime>) -> Self {
        Self { shared: Arc::new(shared), handle, runtime }
    }

    /// The tokio runtime the pool's jobs run on.
    pub fn runtime(&self) -> &RuntimeHandle {
        &self.handle
    }

    /// Runs an async job; its value (or a caught panic) arrives on the handle.
    pub fn submit<F>(&self, job: F) -> Result<Handle<F::Output>, Rejected>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn(self.shared.async_slots.clone(), true, async move { Ok(job.await) })
    }

    /// Runs an async job returning `Result`; an `Err` arrives as [`JobError::Failed`].
    pub fn submit_fallible<F, T, E>(&self, job: F) -> Result<Handle<T>, Rejected>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
    {
        self.spawn(
            self.shared.async_slots.clone(),
            true,
            async move { job.await.map_err(|e| JobError::Failed(e.into())) },
        )
    }

    /// Runs a blocking or CPU-bound closure on a thread, at most `threads` at once.
    pub fn submit_blocking<F, T>(&self, job: F) -> Result<Handle<T>, Rejected>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let run = async move {
            let joined =
                tokio::task::spawn_blocking(move || std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)));
            match joined.await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(payload)) => Err(JobError::Panicked(panic_message(payload))),
                // The runtime is shutting down and dropped the job before it ran.
                Err(_) => Err(JobError::Cancelled),
            }
        };
        self.spawn(Some(self.shared.blocking_slots.clone()), false, run)
    }

    fn spawn<T, F>(&self, slots: Option<Arc<Semaphore>>, abortable: bool, run: F) -> Result<Handle<T>, Rejected>
    where
        F: Future<Output = Outcome<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.shared.admit()?;
        let cell = Cell::new();
        let mut admission =
            Admission { shared: self.shared.clone(), cell: cell.clone(), started: false, finished: false };
        let task = self.handle.spawn(async move {
            let cancel = &admission.shared.cancel_pending;
            let _permit = match slots {
                Some(slots) => tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    permit = slots.acquire_owned() => permit.ok(),
                },
                None => None,
            };
            if cancel.is_cancelled() || !admission.start() {
                return;
            }
            let outcome = CatchUnwind::new(run).await.unwrap_or_else(|panic| Err(JobError::Panicked(panic)));
            admission.finish(outcome);
        });
        Ok(Handle::new(cell, task.abort_handle(), abortable))
    }

    /// Counters and current load.
    pub fn stats(&self) -> PoolStats {
        let s = &self.shared;
        PoolStats {
            submitted: s.submitted.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
            succeeded: s.succeeded.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            cancelled: s.cancelled.load(Ordering::Relaxed),
            pending: s.pending.load(Ordering::Relaxed),
            live: s.live.count(),
        }
    }

    fn close(&self, how: Shutdown) {
        self.shared.closed.store(true, Ordering::Release);
        if how.cancel_pending {
            self.shared.cancel_pending.cancel();
        }
    }

    /// Stops accepting jobs; cancels pending ones and waits for the rest as asked.
    /// Blocks the calling thread while waiting.
    pub fn shutdown(&self, how: Shutdown) {
        self.close(how);
        if how.wait {
            self.shared.live.wait_idle_blocking();
        }
    }

    /// [`Pool::shutdown`] for async code: waits without blocking a thread.
    pub async fn shutdown_async(&self, how: Shutdown) {
        self.close(how);
        if how.wait {
            self.shared.live.wait_idle().await;
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let how = Shutdown::default();
        match RuntimeHandle::try_current().map(|h| h.runtime_flavor()) {
            // Not inside a runtime: blocking is fine.
            Err(_) => self.shutdown(how),
            Ok(RuntimeFlavor::CurrentThread) => {
                // Blocking here would stop the very thread that must run the jobs.
                self.close(how);
            }
            Ok(_) => tokio::task::block_in_place(|| self.shutdown(how)),
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("stats", &self.stats()).finish()
    }
}
