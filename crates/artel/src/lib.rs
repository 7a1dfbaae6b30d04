//! artel scales work from one function call to a cluster.
//!
//! A tour, smallest first:
//!
//! * **In this process**: [`pool::Pool`] runs async jobs and blocking closures with
//!   `concurrent.futures`' calls ([`pool::Pool::submit`], [`pool::Pool::map`],
//!   [`pool::as_completed`], [`pool::wait`], [`pool::Periodic`]); [`pool::ProcessPool`]
//!   runs functions in child processes. [`retry()`] retries any async call with a
//!   [`RetryPolicy`].
//! * **Tasks**: `#[artel::task]` ([`task`], with every option it takes) on an `async fn`,
//!   a [`Registry`] of them, an [`App`] that sends them (`add::delay(&app, 2, 3)`) and
//!   reads results ([`AsyncResult::get`]), [`Signature`]s with per-call options, and
//!   Celery's canvas: [`chain`], [`group`], [`chord`].
//! * **Queues**: [`connect()`] to a broker by URL (`sqlite://` embedded, `redis://`,
//!   `postgres://`, Celery's `celery+redis://` and `amqp://`), [`Connection::worker`] to
//!   run a [`Worker`] in your program, or `artel worker` (`cli::main` for your own
//!   tasks). [`App::local`] runs everything in-process with no server.
//! * **Around the queue**: [`lock`] (in-process, files, brokers, etcd), `cache`
//!   (in-process LRU, Redis, memcached, SQL), `beat` (periodic tasks with one leader),
//!   [`App::map_stream`] (a task per item with a bounded window), `supervise` and
//!   `dashboard` (the modules behind the features of those names; `cli` for `cli::main`).
//!
//! ```
//! use std::time::Duration;
//! use artel::{App, Registry, TaskError};
//!
//! #[artel::task]
//! async fn add(x: i64, y: i64) -> Result<i64, TaskError> {
//!     Ok(x + y)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = App::local(Registry::new().with(add))?;
//! let result = add::delay(&app, 2, 3).await?;
//! assert_eq!(result.get(Duration::from_secs(5)).await?, 5);
//! app.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Options of a task go on its attribute (every one is listed in [`task`]'s docs) and are
//! checked at compile time; per-call options go on its signature:
//!
//! ```
//! use std::time::Duration;
//! use artel::{App, Context, Registry, Task, TaskError};
//!
//! #[artel::task(name = "reports.build", autoretry, max_retries = 3, retry_backoff_ms = 10,
//!               soft_time_limit_ms = 5_000, time_limit_ms = 6_000, rate_limit = "100/s",
//!               lock = "report-{customer}", lock_timeout = "1s", max_running_per_group = 2)]
//! async fn build(ctx: Context, customer: u64) -> Result<String, TaskError> {
//!     if ctx.retries() == 0 {
//!         return Err(TaskError::msg("the database was busy")); // published again, ~10 ms later
//!     }
//!     ctx.check()?; // returns early once the soft time limit passed
//!     Ok(format!("report {customer}, run {}", ctx.retries() + 1))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! assert_eq!(build.options().max_retries, Some(3));
//! let app = App::local(Registry::new().with(build))?;
//! // Tenant 1's runs: at most 2 at once across every worker; one customer's never overlap.
//! let report = build::s(7).with(|s| s.group_key("tenant-1").priority(9)).delay(&app).await?;
//! assert_eq!(report.get(Duration::from_secs(5)).await?, "report 7, run 2");
//! app.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! The options that need a broker's shared stores (a cache, shared rate limits) or child
//! processes, declared here and read back as the worker reads them:
//!
//! ```
//! use std::time::Duration;
//! use artel::{Task, TaskError};
//!
//! #[artel::task(cache_for = "10m", unique_for = "60s")]
//! async fn price(sku: String) -> Result<u64, TaskError> { Ok(sku.len() as u64) }
//!
//! #[artel::task(rate_limit_global = "50/s", rate_limit_key = "{customer}", max_deliveries = 3)]
//! async fn sync(customer: u64) -> Result<(), TaskError> { Ok(()) }
//!
//! #[artel::task(blocking, process, reject_on_worker_lost)]
//! fn render(page: u32) -> Result<Vec<u8>, TaskError> { Ok(vec![0; page as usize]) }
//!
//! let options = price.options();
//! assert_eq!((options.cache_for, options.unique_for), (Some(Duration::from_secs(600)), Some(Duration::from_secs(60))));
//! let options = sync.options();
//! assert_eq!(options.rate_limit_key.as_deref(), Some("{customer}"));
//! assert_eq!(options.max_deliveries, Some(3));
//! let options = render.options();
//! assert_eq!((options.process, options.reject_on_worker_lost), (Some(true), Some(true)));
//! assert_eq!(render::call(3)?, [0, 0, 0]); // the body, run here
//! # Ok::<(), TaskError>(())
//! ```
//!
//! Cargo features pick the brokers compiled in: `sqlite` (default), `redis`, `postgres`,
//! `celery` (`celery+redis://` and `amqp://`), `http-task` (the guarded `http` built-in),
//! `cli` (`artel::cli::main`), `cache`, `memcached`, `etcd`, `otel`, `full` (most of
//! them). A URL whose broker is not compiled in is refused with the feature to turn on.
//! Runnable recipes, each the counterpart of a Python one: `examples/recipes`.

extern crate self as artel;

mod app;
pub mod builtins;
#[cfg(feature = "cli")]
pub mod cli;
mod client;
pub mod connect;
mod group;
mod hub;
pub mod logging;
pub mod python;
mod worker;

pub use app::App;
pub use artel_core::canvas::{self, chain, chord, group};
pub use artel_core::{
    Arguments, Backoff, BoxFuture, Cancelled, Context, Registry, RetryPolicy, Signature, State, Task, TaskError,
    TaskErrorKind, TaskOptions, TaskResult, retry,
};
pub use artel_macros::task;
pub use artel_runtime::{ProcessSettings, Stop, TaskTiming, Worker, WorkerConfig, WorkerStats};

/// In a program that embeds a [`Worker`] whose tasks run in child processes
/// (`WorkerConfig::processes`, or tasks declared `process`): serves `registry`'s tasks
/// and exits when this process is one of those children; returns at once otherwise.
/// Call it first thing in `main` (`artel::cli::main` does it for you):
///
/// ```no_run
/// // First thing in `main`:
/// let registry = artel::Registry::new(); // your tasks, as the worker has them
/// artel::serve_if_child(&registry);
/// // ... then build the worker as usual
/// ```
pub fn serve_if_child(registry: &Registry) {
    artel_pool::serve_if_child(&artel_runtime::child_functions(registry));
}
pub use client::{AsyncResult, ResultError, SendError, TypedSignature};
pub use connect::{ConnectError, Connection, DEFAULT_BROKER, connect};
pub use group::GroupResult;
pub use hub::ResultHub;
pub use worker::{WorkerBuilder, WorkerSetupError};

/// Periodic tasks for the queue: schedules and [`beat::Beat`], one elected leader.
#[cfg(feature = "beat")]
#[doc(inline)]
pub use artel_beat as beat;
/// Caches with one API: typed values with a TTL, single-flight `get_or_compute`,
/// compare-and-set `update`; in this process (`cache::LocalCache`) or shared through
/// Redis (`redis::RedisBroker::cache_store`) or memcached (feature `memcached`).
#[cfg(feature = "cache")]
#[doc(inline)]
pub use artel_cache as cache;
/// Celery's own layouts (`celery+redis://`, `amqp://`).
#[cfg(feature = "celery")]
#[doc(inline)]
pub use artel_celery as celery;
/// The data model and broker seams.
#[doc(inline)]
pub use artel_core as core;
/// The web dashboard: [`dashboard::Dashboard`] serves a backend's queues, tasks, dead
/// letters and workers.
#[cfg(feature = "dashboard")]
#[doc(inline)]
pub use artel_dashboard as dashboard;
/// Locks and fenced values on etcd (`artel::etcd::EtcdLocks`).
#[cfg(feature = "etcd")]
#[doc(inline)]
pub use artel_etcd as etcd;
/// Locks with a guard released on drop and a fencing token: in-process, file (`flock`),
/// on a broker ([`core::Backend::locks`]), and on etcd (feature `etcd`).
#[doc(inline)]
pub use artel_lock as lock;
/// A cache store shared through memcached: [`memcached::MemcachedCache`] under
/// [`cache::Cache`].
#[cfg(feature = "memcached")]
#[doc(inline)]
pub use artel_memcached as memcached;
/// OpenTelemetry: task runs as spans ([`otel::TaskSpans`]), OTLP export from `OTEL_*`.
#[cfg(feature = "otel")]
#[doc(inline)]
pub use artel_otel as otel;
/// Local executors.
#[doc(inline)]
pub use artel_pool as pool;
/// The PostgreSQL broker (`postgres://`), and its driver for [`App::send_in`]'s transactions.
#[cfg(feature = "postgres")]
#[doc(inline)]
pub use artel_postgres as postgres;
/// The native Redis broker (`redis://`).
#[cfg(feature = "redis")]
#[doc(inline)]
pub use artel_redis as redis;
/// The embedded SQLite broker (`sqlite://`).
#[cfg(feature = "sqlite")]
#[doc(inline)]
pub use artel_sqlite as sqlite;
/// The service manager: `artel supervise`, and [`supervise::ServiceManager`] for Rust services.
#[cfg(feature = "cli")]
#[doc(inline)]
pub use artel_supervise as supervise;

/// Items `#[artel::task]` expands to; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use serde_json::to_value;

    /// Runs a `blocking` task body on a thread of its own; a panic becomes a task error.
    ///
    /// A plain detached thread rather than tokio's blocking pool: when a hard time limit
    /// abandons a runaway body, its thread must not hold up the runtime's shutdown (and
    /// with it the worker process's exit).
    ///
    /// `running` is held by the thread until it ends, so a stopping worker knows not to
    /// hand the message back while the body still runs.
    pub async fn run_blocking<T: Send + 'static>(
        running: artel_core::Unstoppable,
        body: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, crate::TaskError> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let run = move || {
            let _ = done.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)));
            drop(running);
        };
        let panicked = |detail: String| crate::TaskError::of_kind(crate::TaskErrorKind::Panicked, detail);
        std::thread::Builder::new()
            .name("artel-blocking".to_owned())
            .spawn(run)
            .map_err(|e| crate::TaskError::msg(format!("cannot start a thread for a blocking task: {e}")))?;
        match outcome.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(panicked("blocking task panicked".to_owned())),
            Err(_) => Err(panicked("blocking task's thread ended without a result".to_owned())),
        }
    }
}
