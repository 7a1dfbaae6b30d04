//! Python's documentation warns of two deadlocks:
//! ```python
//! executor = ThreadPoolExecutor(max_workers=1)
//! def wait_on_future():
//!     f = executor.submit(pow, 5, 2)
//!     print(f.result())          # the only thread waits for a job that needs a thread
//! executor.submit(wait_on_future)
//!
//! a = executor.submit(lambda: b.result())   # and with max_workers=2, two jobs that
//! b = executor.submit(lambda: a.result())   # wait on each other: both hang for good
//! ```
//! In artel a job that awaits another gives its thread back while it waits, so jobs can
//! wait on jobs on one thread. A true cycle can hang in any executor; with artel's
//! handles a wait has a timeout, and the stuck jobs are cancelled instead of hanging
//! the program.

use std::time::Duration;

use anyhow::ensure;
use artel::pool::{JobError, Pool};
use tokio::sync::oneshot;

/// Runs the recipe.
pub fn run() -> anyhow::Result<()> {
    // One runtime thread; 100 jobs, each waiting on a job it submitted.
    let pool = std::sync::Arc::new(Pool::builder().worker_threads(1).build()?);
    let handles = (0..100u64)
        .map(|n| {
            let inner = pool.clone();
            pool.submit(async move {
                let square = inner.submit(async move { n * n }).map_err(|e| e.to_string())?;
                square.await.map_err(|e| e.to_string())
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut total = 0;
    for handle in handles {
        total += handle.wait()?.map_err(anyhow::Error::msg)?;
    }
    ensure!(total == (0..100u64).map(|n| n * n).sum::<u64>(), "every nested job ran: {total}");
    println!("100 jobs each waited on a job of its own, on one thread: sum of squares {total}");

    // Two jobs waiting on each other: each waits for the other's answer, forever.
    let (to_a, from_b) = oneshot::channel::<u64>();
    let (to_b, from_a) = oneshot::channel::<u64>();
    let mut a = pool.submit(async move {
        let b = from_b.await.unwrap_or_default();
        let _ = to_b.send(b + 1);
    })?;
    let mut b = pool.submit(async move {
        let a = from_a.await.unwrap_or_default();
        let _ = to_a.send(a + 1);
    })?;
    let stuck = a.wait_timeout(Duration::from_millis(200)).is_none() && b.wait_timeout(Duration::ZERO).is_none();
    ensure!(stuck, "the cycle cannot finish");
    ensure!(a.cancel() && b.cancel(), "both stuck jobs are cancelled");
    ensure!(matches!(a.wait(), Err(JobError::Cancelled)), "a reports its cancellation");
    println!("a cycle of two jobs: found by a 200 ms timeout and cancelled, nothing left hanging");
    Ok(())
}
