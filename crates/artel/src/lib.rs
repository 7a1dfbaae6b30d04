//! artel scales work from one function call to a cluster.
//!
//! * Local pools with a `concurrent.futures`-style API: [`pool::Pool`].
//! * Named tasks: `#[artel::task]` on an `async fn`, a [`Registry`], and an [`App`] that
//!   sends them (`add::delay(&app, 2, 3)`) and reads results ([`AsyncResult::get`]).
//!   [`App::local`] runs everything in-process with no server.
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
//! Cargo features pick the brokers compiled in: `sqlite` (default), `redis`, `celery`
//! (`celery+redis://` and `amqp://`), `http-task` (the guarded `http` built-in), `cli`
//! (`artel::cli::main`), `full` (all of them). A URL whose broker is not compiled in is
//! refused with the feature to turn on.

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
pub use artel_beat as beat;
/// Caches with one API: typed values with a TTL, single-flight `get_or_compute`,
/// compare-and-set `update`; in this process (`cache::LocalCache`) or shared through
/// Redis (`redis::RedisBroker::cache_store`) or memcached (feature `memcached`).
#[cfg(feature = "cache")]
pub use artel_cache as cache;
/// Celery's own layouts (`celery+redis://`, `amqp://`).
#[cfg(feature = "celery")]
pub use artel_celery as celery;
/// The data model and broker seams.
pub use artel_core as core;
/// The web dashboard: [`dashboard::Dashboard`] serves a backend's queues, tasks, dead
/// letters and workers.
#[cfg(feature = "dashboard")]
pub use artel_dashboard as dashboard;
/// Locks and fenced values on etcd (`artel::etcd::EtcdLocks`).
#[cfg(feature = "etcd")]
pub use artel_etcd as etcd;
/// Locks with a guard released on drop and a fencing token: in-process, file (`flock`),
/// on a broker ([`core::Backend::locks`]), and on etcd (feature `etcd`).
pub use artel_lock as lock;
/// A cache store shared through memcached: [`memcached::MemcachedCache`] under
/// [`cache::Cache`].
#[cfg(feature = "memcached")]
pub use artel_memcached as memcached;
/// OpenTelemetry: task runs as spans ([`otel::TaskSpans`]), OTLP export from `OTEL_*`.
#[cfg(feature = "otel")]
pub use artel_otel as otel;
/// Local executors.
pub use artel_pool as pool;
/// The PostgreSQL broker (`postgres://`), and its driver for [`App::send_in`]'s transactions.
#[cfg(feature = "postgres")]
pub use artel_postgres as postgres;
/// The native Redis broker (`redis://`).
#[cfg(feature = "redis")]
pub use artel_redis as redis;
/// The embedded SQLite broker (`sqlite://`).
#[cfg(feature = "sqlite")]
pub use artel_sqlite as sqlite;
/// The service manager: `artel supervise`, and [`supervise::ServiceManager`] for Rust services.
#[cfg(feature = "cli")]
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
