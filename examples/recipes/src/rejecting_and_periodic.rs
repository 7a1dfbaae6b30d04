//! Python (futurist):
//! ```python
//! ex = futurist.ThreadPoolExecutor(max_workers=2, check_and_reject=rejection.reject_when_reached(4))
//! try: ex.submit(work)
//! except futurist.RejectedSubmission: ...            # the backlog is full: shed load
//! w = periodics.PeriodicWorker([(every_50ms, None, None)]); threading.Thread(target=w.start).start()
//! ```
//! artel's [`Pool`] rejects past `max_backlog` with an error that says so, and
//! [`Periodic`] calls a function on a schedule with jitter and counts its runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::ensure;
use artel::pool::{Periodic, Pool, Rejected};

/// Runs the recipe.
pub fn run() -> anyhow::Result<()> {
    // Two running, four waiting: of eight more submitted then, four are turned away.
    let pool = Pool::builder().concurrency(2).max_backlog(4).build()?;
    let mut accepted = Vec::new();
    for _ in 0..2 {
        accepted.push(pool.submit(async { tokio::time::sleep(Duration::from_millis(200)).await })?);
    }
    while pool.stats().pending > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut rejected = 0;
    for _ in 0..8 {
        match pool.submit(async { tokio::time::sleep(Duration::from_millis(100)).await }) {
            Ok(handle) => accepted.push(handle),
            Err(Rejected::Backlog { limit }) => {
                ensure!(limit == 4, "the limit is named");
                rejected += 1;
            }
            Err(other) => return Err(other.into()),
        }
    }
    ensure!(
        (accepted.len(), rejected) == (6, 4),
        "2 running + 4 waiting accepted, 4 rejected: {} {rejected}",
        accepted.len()
    );
    for handle in accepted {
        handle.wait()?;
    }
    println!(
        "concurrency 2, max_backlog 4: with 2 running, 4 of 8 more accepted, {rejected} rejected; the accepted all ran"
    );

    // Every 50 ms (plus up to 10 ms of jitter), from now on.
    let ticks = Arc::new(AtomicU64::new(0));
    let counter = ticks.clone();
    let periodic = Periodic::every(Duration::from_millis(50))
        .jitter(Duration::from_millis(10))
        .run_immediately(true)
        .start(pool.runtime(), move || {
            counter.fetch_add(1, Ordering::Relaxed);
            async {}
        });
    std::thread::sleep(Duration::from_millis(400));
    let runs = periodic.runs();
    pool.runtime().block_on(periodic.join());
    ensure!((3..=9).contains(&runs), "about 400 / 55 runs: {runs}");
    ensure!(ticks.load(Ordering::Relaxed) >= runs, "each run called the function");
    println!("a periodic every 50 ms ran {runs} times in 400 ms, then stopped");
    Ok(())
}
