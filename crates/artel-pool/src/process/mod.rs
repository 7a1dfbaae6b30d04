//! [`ProcessPool`]: registered functions run in child processes, behind the same futures
//! API as the pool (handles, ordered windowed `map`, `as_completed`, `wait`, cancel,
//! backlog, shutdown).
//!
//! Children are the same program started again in the child role (no `fork` of a running
//! tokio process): [`serve_if_child`] at the top of `main` serves calls and exits. Each
//! call travels as a length-prefixed JSON frame over a Unix socket. Calls queue; one
//! driver per free slot sends them to its child in batches of up to 8 (a call with a
//! time limit alone), and the child runs them one after another and answers in order, so
//! the socket's round trip is paid once per batch. Crash isolation: a child that dies
//! (abort, segfault, out of memory) fails only the call it was running with
//! [`JobError::WorkerLost`] and is replaced, and the batch's calls it had not started go
//! back to the head of the queue; a call past its time limit has its child killed
//! (SIGTERM, then SIGKILL after a grace) and fails with [`JobError::TimedOut`]; a
//! cancelled running call kills its child.
//!
//! Invariants: a child runs one batch at a time and goes back to the idle set only after
//! every answer of it; a child that broke a call, overran or was cancelled is never
//! reused; every queued call is answered or, once its caller is gone, dropped.

mod child;
mod children;
mod frame;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

pub use child::{Functions, serve_if_child};
use children::{Children, Settings};
use frame::{Reply, Request};

use crate::error::{JobError, Rejected};
use crate::handle::Handle;
use crate::map::Map;
use crate::pool::{Pool, PoolStats, Shutdown};

/// Calls admitted from the pool's backlog to wait for a child's slot.
const MAX_CALLS_WAITING: usize = 4096;

/// One call of a registered function.
#[derive(Debug, Clone)]
pub struct Call {
    /// The function's registered name.
    pub task: String,
    /// Its arguments, as JSON.
    pub args: Value,
    /// Kill the child and fail with [`JobError::TimedOut`] past this.
    pub time_limit: Option<Duration>,
}

impl Call {
    /// A call of `task` with `args` and no time limit.
    pub fn new(task: &str, args: Value) -> Self {
        Self { task: task.to_owned(), args, time_limit: None }
    }

    /// This call, killed past `limit`.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }
}

/// Counters of a process pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessPoolStats {
    /// The calls, as the pool counts jobs.
    pub jobs: PoolStats,
    /// Children started since the pool was built.
    pub started: u64,
    /// Children that died during a call.
    pub lost: u64,
    /// Children replaced after `max_tasks_per_child` calls or past `max_memory_per_child`.
    pub recycled: u64,
    /// Children killed for overrunning a call's time limit.
    pub killed: u64,
    /// Pids of the children idle now.
    pub idle: Vec<u32>,
}

/// Configures a [`ProcessPool`].
pub struct ProcessPoolBuilder {
    processes: usize,
    max_backlog: Option<usize>,
    settings: Settings,
}

impl std::fmt::Debug for ProcessPoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPoolBuilder").field("processes", &self.processes).finish_non_exhaustive()
    }
}

impl ProcessPoolBuilder {
    /// Children running at once (Celery's `--concurrency` with the prefork pool).
    /// Default: the number of CPUs.
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = n;
        self
    }

    /// Calls that may wait for a child before `submit` is rejected. Default: no limit.
    pub fn max_backlog(mut self, n: usize) -> Self {
        self.max_backlog = Some(n);
        self
    }

    /// Replaces a child after this many calls (Celery's `max_tasks_per_child`).
    pub fn max_tasks_per_child(mut self, n: u32) -> Self {
        self.settings.max_tasks_per_child = Some(n.max(1));
        self
    }

    /// Replaces a child whose resident memory is past `bytes` after a call (Celery's
    /// `max_memory_per_child`).
    pub fn max_memory_per_child(mut self, bytes: u64) -> Self {
        self.settings.max_memory_per_child = Some(bytes);
        self
    }

    /// Starts children as `program args…` instead of this executable again (a dedicated
    /// child binary, or a test harness running one test); the program must call
    /// [`serve_if_child`]. Call it before [`ProcessPoolBuilder::env`]: it replaces how
    /// children start, the environment set so far included.
    pub fn program(mut self, program: impl Into<PathBuf>, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        let (program, args): (PathBuf, Vec<OsString>) = (program.into(), args.into_iter().map(Into::into).collect());
        self.settings.launcher = Arc::new(move || {
            let mut command = tokio::process::Command::new(&program);
            command.args(&args);
            command
        });
        self
    }

    /// Sets `key=value` in every child's environment.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        let (launch, key, value) = (self.settings.launcher.clone(), key.to_owned(), value.to_owned());
        self.settings.launcher = Arc::new(move || {
            let mut command = launch();
            command.env(&key, &value);
            command
        });
        self
    }

    /// How long an overrunning child gets between SIGTERM and SIGKILL. Default: 1 s.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.settings.kill_grace = grace;
        self
    }

    /// Builds the pool; children start when calls need them.
    pub fn build(self) -> std::io::Result<ProcessPool> {
        if std::env::var_os(child::CHILD_ENV).is_some() {
            return Err(std::io::Error::other(
                "this process was started as a process-pool child but did not serve: call artel_pool::serve_if_child first thing in main",
            ));
        }
        // The children's slots bound the calls running; the pool's limit only bounds how
        // many calls wait for a slot inside it (so `resize` can grow past the start size).
        let pool = Pool::builder().concurrency(MAX_CALLS_WAITING).threads(1).worker_threads(1).build()?;
        let children = Children::new(self.settings, self.processes.max(1));
        Ok(ProcessPool { pool, children: Arc::new(children), max_backlog: self.max_backlog })
    }
}

/// Registered functions run in child processes; see the module docs.
///
/// Dropping it waits for accepted calls, as [`Pool`] does; the children exit once the
/// last call has given theirs back.
pub struct ProcessPool {
    pool: Pool,
    children: Arc<Children>,
    max_backlog: Option<usize>,
}

impl std::fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPool").field("stats", &self.stats()).finish()
    }
}

impl ProcessPool {
    /// Configures a pool.
    pub fn builder() -> ProcessPoolBuilder {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let current =
            std::env::current_exe().unwrap_or_else(|_| PathBuf::from(std::env::args_os().next().unwrap_or_default()));
        ProcessPoolBuilder {
            processes: cpus,
            max_backlog: None,
            settings: Settings {
                launcher: Arc::new(move || tokio::process::Command::new(&current)),
                max_tasks_per_child: None,
                max_memory_per_child: None,
                start_timeout: Duration::from_secs(10),
                kill_grace: Duration::from_secs(1),
            },
        }
    }

    /// Runs `task` with `args` in a child.
    pub fn submit(&self, task: &str, args: Value) -> Result<Handle<Value>, Rejected> {
        self.submit_call(Call::new(task, args))
    }

    /// Runs `call` in a child. A function's error arrives as [`JobError::Failed`].
    pub fn submit_call(&self, call: Call) -> Result<Handle<Value>, Rejected> {
        // Calls queued beyond what the free slots take at once are the backlog.
        let queued = self.children.queued();
        if let Some(limit) = self.max_backlog.filter(|limit| queued >= *limit + self.children.free()) {
            return Err(Rejected::Backlog { limit });
        }
        // Queued now, so the backlog counts it at once; the job only awaits the answer.
        let answered = {
            let _runtime = self.pool.runtime().enter();
            self.children.enqueue(Request { task: call.task, args: call.args }, call.time_limit)
        };
        self.pool.spawn_async(async move {
            match answered.await.unwrap_or(Err(JobError::Cancelled))? {
                Reply::Ok(value) => Ok(value),
                Reply::Err(error) => Err(JobError::Failed(error.into())),
            }
        })
    }

    /// `task` over `items`, results in input order with at most `window` calls in
    /// flight; the input is read lazily.
    pub fn map<I>(&self, task: &str, items: I, window: usize) -> Map<'_, Value, I::IntoIter>
    where
        I: IntoIterator<Item = Value>,
    {
        let task = task.to_owned();
        Map::new(items.into_iter(), window, Box::new(move |args| self.submit(&task, args)))
    }

    /// Pids of every child alive now.
    pub fn pids(&self) -> Vec<u32> {
        self.children.pids()
    }

    /// How many children may run at once.
    pub fn size(&self) -> usize {
        self.children.size()
    }

    /// Calls after which a child is replaced, if set.
    pub fn max_tasks_per_child(&self) -> Option<u32> {
        self.children.max_tasks_per_child()
    }

    /// Grows (positive `delta`) or shrinks how many children run at once, never below
    /// one (Celery's `pool_grow` / `pool_shrink`); returns the new size. A shrink takes
    /// effect as running calls end.
    pub fn resize(&self, delta: i64) -> usize {
        let _runtime = self.pool.runtime().enter();
        let before = self.children.size();
        let size = self.children.resize(delta);
        // New slots take on calls already waiting.
        for _ in before..size {
            self.children.drive();
        }
        size
    }

    /// Counters, and the children idle now.
    pub fn stats(&self) -> ProcessPoolStats {
        let counts = &self.children.counts;
        ProcessPoolStats {
            jobs: self.pool.stats(),
            started: counts.started.load(Ordering::Relaxed),
            lost: counts.lost.load(Ordering::Relaxed),
            recycled: counts.recycled.load(Ordering::Relaxed),
            killed: counts.killed.load(Ordering::Relaxed),
            idle: self.children.idle_pids(),
        }
    }

    /// Stops accepting calls, waits as asked, then ends the children. Blocks the
    /// calling thread while waiting.
    pub fn shutdown(&self, how: Shutdown) {
        self.pool.shutdown(how);
        self.children.close();
    }

    /// [`ProcessPool::shutdown`] for async code.
    pub async fn shutdown_async(&self, how: Shutdown) {
        self.pool.shutdown_async(how).await;
        self.children.close();
    }
}
