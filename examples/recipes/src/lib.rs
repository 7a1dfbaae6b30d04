//! The concurrency recipes Python users know, each done with artel and checking its own
//! output: run one with `cargo run -p recipes -- NAME`, all with `cargo run -p recipes`;
//! `./scripts/test` runs every one (`tests/recipes.rs`).
//!
//! Each module opens with the Python recipe it answers and what the artel version does
//! better; its `run` prints what it did and fails when the result is not the expected one.

pub mod blocking_in_async;
pub mod caches;
pub mod futures_waiting_on_futures;
pub mod jobs;
pub mod locks;
pub mod many_short_calls;
pub mod process_pool;
pub mod rejecting_and_periodic;
pub mod retries;
pub mod services;
pub mod task_queue;
pub mod thread_pool;
pub mod where_the_time_goes;

/// A recipe: its name on the command line, what it shows, and how to run it.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    /// `cargo run -p recipes -- NAME`.
    pub name: &'static str,
    /// The Python recipe it answers.
    pub what: &'static str,
    /// Runs it; an error says which expectation failed.
    pub run: fn() -> anyhow::Result<()>,
}

const fn recipe(name: &'static str, what: &'static str, run: fn() -> anyhow::Result<()>) -> Recipe {
    Recipe { name, what, run }
}

/// Every recipe.
pub const RECIPES: &[Recipe] = &[
    recipe("thread-pool", "ThreadPoolExecutor: submit, as_completed, map, wait", thread_pool::run),
    recipe(
        "futures-waiting-on-futures",
        "a job waiting on another job in a one-thread pool; a cycle found by a timeout",
        futures_waiting_on_futures::run,
    ),
    recipe(
        "process-pool",
        "ProcessPoolExecutor: a crash or a time limit fails one call, not the pool",
        process_pool::run,
    ),
    recipe(
        "many-short-calls",
        "multiprocessing.Pool(200): 10,000 calls of 100 ms, timed beside Python",
        many_short_calls::run,
    ),
    recipe("rejecting-and-periodic", "futurist: reject_when_reached and periodics", rejecting_and_periodic::run),
    recipe("blocking-in-async", "asyncio.gather with run_in_executor for blocking code", blocking_in_async::run),
    recipe("retries", "tenacity: retry with exponential backoff and jitter", retries::run),
    recipe("locks", "threading.Lock, fasteners and etcd locks", locks::run),
    recipe("caches", "cachetools TTL/LRU and memcached's check-and-set", caches::run),
    recipe("jobs", "RQ: enqueue, status and result, the failed job registry and requeue", jobs::run),
    recipe("services", "cotyledon's ServiceManager: copies kept running, crash loops stopped", services::run),
    recipe("task-queue", "Celery: tasks with retries, time limits, priorities, chain, group, chord", task_queue::run),
    recipe("where-the-time-goes", "cProfile / py-spy on a worker: run times per task", where_the_time_goes::run),
];

/// A tokio runtime for the recipes that are async inside.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// Runs `body` with the URL of a scratch SQLite broker file, removed afterwards.
pub(crate) fn on_scratch_sqlite<F, Fut>(body: F) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let file = std::env::temp_dir().join(format!("artel-recipe-{}.db", uuid::Uuid::new_v4()));
    let outcome = runtime()?.block_on(body(format!("sqlite://{}", file.display())));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    // Where the broker's processes wake each other up.
    let _ = std::fs::remove_dir_all(format!("{}.wake", file.display()));
    outcome
}
