//! Python:
//! ```python
//! with ProcessPoolExecutor(max_workers=2) as ex:
//!     print(list(ex.map(fib, range(20, 30))))
//!     ex.submit(os.abort).result()   # BrokenProcessPool: every pending future fails,
//! ```                                # and the executor is unusable from then on
//! artel's [`ProcessPool`] runs registered functions in child processes of the same
//! program (the one line `serve_if_child` at the top of `main`). A child that dies fails
//! only its own call (`WorkerLostError`) and is replaced; a call past its time limit has
//! its child killed; the pool goes on.

use std::time::Duration;

use anyhow::ensure;
use artel::pool::{Call, Functions, JobError, ProcessPool};
use serde_json::{Value, json};

fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

/// The functions children may run; `main` serves them when it is started as a child.
pub fn functions() -> Functions {
    Functions::new()
        .register("fib", |n: Value| {
            n.as_u64().map(|n| json!(fib(n))).ok_or_else(|| format!("fib needs a number, got {n}"))
        })
        .register("abort", |_| std::process::abort())
}

/// Runs the recipe; only in the `recipes` binary, whose children serve [`functions`].
pub fn run() -> anyhow::Result<()> {
    let pool = ProcessPool::builder().processes(2).build()?;
    let results: Vec<Value> =
        pool.map("fib", (20..30).map(|n| json!(n)), 4).blocking().collect::<Result<_, JobError>>()?;
    ensure!(results.last() == Some(&json!(fib(29))), "fib(20..30) in order: {results:?}");
    println!("fib(20..30) in 2 children: {}", Value::Array(results));

    let aborted = pool.submit("abort", json!(null))?.wait();
    ensure!(matches!(aborted, Err(JobError::WorkerLost(_))), "only that call fails: {aborted:?}");
    let limited = pool.submit_call(Call::new("fib", json!(60)).time_limit(Duration::from_millis(200)))?.wait();
    ensure!(matches!(limited, Err(JobError::TimedOut(_))), "its child is killed at the limit: {limited:?}");
    let after = pool.submit("fib", json!(10))?.wait()?;
    ensure!(after == json!(55), "the pool goes on with new children");
    println!("an aborting call: {}", aborted.err().map(|e| e.to_string()).unwrap_or_default());
    println!("a call past its 200 ms limit: {}", limited.err().map(|e| e.to_string()).unwrap_or_default());
    println!("fib(10) afterwards: {after}");
    Ok(())
}
