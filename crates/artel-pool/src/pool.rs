//! [`Pool`]: runs async jobs and blocking jobs with bounded concurrency and backlog.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::runtime::{Handle as RuntimeHandle, Runtime, RuntimeFlavor};

use crate::BoxError;
use crate::cell::{Cell, Outcome};
use crate::error::{JobError, Rejected};
use crate::executor::{Executor, LaneId, Padded, Work};
use crate::handle::Handle;

/// Jobs larger than this are boxed on their own before the pool wraps them: an `async
/// move` block that awaits a captured future keeps it twice (captured, then being
/// awaited), so the pool's two wrappers would hold a large job four times over (a
/// worker's 13.8 KB task took 55 KB, all copied on every move).
const INLINE_FUTURE_MAX: usize = 512;

/// A local executor: async jobs and blocking jobs (on threads) behind one futures API.
///
/// Dropping the pool shuts it down and waits for accepted jobs, like leaving a
/// `with ThreadPoolExecutor()` block; in async code call [`Pool::shutdown_async`] instead.
///
/// ```
/// use artel_pool::Pool;
///
/// let pool = Pool::builder().threads(4).max_backlog(1_000).build()?;
/// // An async job (I/O, timers) and a blocking one (CPU, a sync library), one API.
/// let fetched = pool.submit(async { "page".len() })?;
/// let summed = pool.submit_blocking(|| (1..=100u64).sum::<u64>())?;
/// assert_eq!((fetched.wait()?, summed.wait()?), (4, 5050));
/// // A job that panics fails alone.
/// let panicked = pool.submit_blocking(|| -> u8 { panic!("bad input") })?.wait();
/// assert!(matches!(panicked, Err(artel_pool::JobError::Panicked(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool {
    executor: Arc<Executor>,
    closed: AtomicBool,
    max_backlog: Option<usize>,
    submitted: Padded<AtomicU64>,
    rejected: AtomicU64,
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
    pub succeeded: usize,
    /// Jobs that failed or panicked.
    pub failed: usize,
    /// Jobs cancelled before finishing.
    pub cancelled: usize,
    /// Jobs accepted and waiting for a slot now.
    pub pending: usize,
    /// Jobs accepted and not finished now.
    pub live: usize,
}

/// Settings the builder resolved.
pub(crate) struct Limits {
    pub(crate) concurrency: usize,
    pub(crate) threads: usize,
    pub(crate) max_backlog: Option<usize>,
    pub(crate) runners: usize,
}

impl Pool {
    /// A pool with default settings (see [`crate::PoolBuilder`]).
    pub fn new() -> std::io::Result<Self> {
        Self::builder().build()
    }

    /// Configures a pool.
    pub fn builder() -> crate::PoolBuilder {
        crate::PoolBuilder::default()
    }

    pub(crate) fn from_parts(limits: Limits, handle: RuntimeHandle, runtime: Option<Runtime>) -> std::io::Result<Self> {
        let track_pending = limits.max_backlog.is_some();
        let executor = Executor::start(&handle, limits.runners, [limits.concurrency, limits.threads], track_pending)?;
        Ok(Self {
            executor,
            closed: AtomicBool::new(false),
            max_backlog: limits.max_backlog,
            submitted: Padded(AtomicU64::new(0)),
            rejected: AtomicU64::new(0),
            handle,
            runtime,
        })
    }

    /// The tokio runtime the pool's jobs run on.
    pub fn runtime(&self) -> &RuntimeHandle {
        &self.handle
    }

    /// Runs an async job; its value (or a caught panic) arrives on the handle.
    ///
    /// A running async job can be cancelled: it is dropped at its next `.await`.
    pub fn submit<F>(&self, job: F) -> Result<Handle<F::Output>, Rejected>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if std::mem::size_of::<F>() > INLINE_FUTURE_MAX {
            let job = Box::pin(job);
            return self.spawn_async(async move { Ok(job.await) });
        }
        self.spawn_async(async move { Ok(job.await) })
    }

    /// Runs an async job returning `Result`; an `Err` arrives as [`JobError::Failed`].
    pub fn submit_fallible<F, T, E>(&self, job: F) -> Result<Handle<T>, Rejected>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Into<BoxError>,
    {
        if std::mem::size_of::<F>() > INLINE_FUTURE_MAX {
            let job = Box::pin(job);
            return self.spawn_async(async move { job.await.map_err(|e| JobError::Failed(e.into())) });
        }
        self.spawn_async(async move { job.await.map_err(|e| JobError::Failed(e.into())) })
    }

    /// Runs a blocking or CPU-bound closure on one of the pool's `threads` threads.
    /// Once running it cannot be cancelled (threads cannot be interrupted).
    pub fn submit_blocking<F, T>(&self, job: F) -> Result<Handle<T>, Rejected>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.admit()?;
        let cell = Cell::new();
        let finish = cell.clone();
        // A panic is caught by the thread and recorded as the job's failure.
        let work = Work::Blocking(Box::new(move || {
            finish.finish(Ok(job()));
        }));
        let handle = self.executor.submit(LaneId::Blocking, cell.clone(), work);
        Ok(Handle::new(cell, &handle, false))
    }

    pub(crate) fn spawn_async<T, F>(&self, run: F) -> Result<Handle<T>, Rejected>
    where
        F: Future<Output = Outcome<T>> + Send + 'static,
        T: Send + 'static,
    {
        self.admit()?;
        let cell = Cell::new();
        let finish = cell.clone();
        let work = Work::Async(Box::pin(async move {
            finish.finish(run.await);
        }));
        let job = self.executor.submit(LaneId::Async, cell.clone(), work);
        Ok(Handle::new(cell, &job, true))
    }

    /// Accepts one more job or says why not.
    fn admit(&self) -> Result<(), Rejected> {
        let refuse = |why| {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            Err(why)
        };
        if self.closed.load(Ordering::Acquire) {
            return refuse(Rejected::ShutDown);
        }
        let counters = &self.executor.counters;
        if let Some(limit) = self.max_backlog {
            if counters.pending.fetch_add(1, Ordering::AcqRel) >= limit {
                counters.pending.fetch_sub(1, Ordering::AcqRel);
                return refuse(Rejected::Backlog { limit });
            }
        }
        counters.live.enter();
        self.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Counters and current load.
    pub fn stats(&self) -> PoolStats {
        let c = &self.executor.counters;
        PoolStats {
            submitted: self.submitted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            succeeded: c.succeeded.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            cancelled: c.cancelled.load(Ordering::Relaxed),
            pending: self.executor.pending(),
            live: c.live.count(),
        }
    }

    fn close(&self, how: Shutdown) {
        self.closed.store(true, Ordering::Release);
        if how.cancel_pending {
            self.executor.cancel_waiting();
        }
    }

    /// Stops accepting jobs; cancels pending ones and waits for the rest as asked.
    /// Blocks the calling thread while waiting.
    pub fn shutdown(&self, how: Shutdown) {
        self.close(how);
        if how.wait {
            self.executor.counters.live.wait_idle_blocking();
        }
    }

    /// [`Pool::shutdown`] for async code: waits without blocking a thread.
    pub async fn shutdown_async(&self, how: Shutdown) {
        self.close(how);
        if how.wait {
            self.executor.counters.live.wait_idle().await;
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let how = Shutdown::default();
        match RuntimeHandle::try_current().map(|h| h.runtime_flavor()) {
            // Not inside a runtime: blocking is fine.
            Err(_) => self.shutdown(how),
            // Blocking here would stop the very thread that must run the jobs; they
            // finish in the background and the runners exit after them.
            Ok(RuntimeFlavor::CurrentThread) => self.close(how),
            Ok(_) => tokio::task::block_in_place(|| self.shutdown(how)),
        }
        self.executor.stop();
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
