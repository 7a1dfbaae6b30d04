//! Python:
//! ```python
//! with ThreadPoolExecutor(max_workers=4) as ex:
//!     futures = [ex.submit(checksum, n) for n in range(1, 21)]
//!     for f in as_completed(futures): print(f.result())
//!     lengths = list(ex.map(len, words))
//!     done, not_done = wait(futures, return_when=FIRST_COMPLETED)
//! ```
//! artel's [`Pool`] has the same calls, and more: a job that panics fails alone (its
//! handle says so, the pool keeps going), and `map` reads its input lazily with a bounded
//! window, where `Executor.map` submits every item at once.

use std::time::Duration;

use anyhow::ensure;
use artel::pool::{JobError, Pool, ReturnWhen, as_completed, wait_blocking};

fn checksum(n: u64) -> u64 {
    (0..10_000 * n).fold(0u64, |sum, i| sum.wrapping_mul(31).wrapping_add(i))
}

/// Runs the recipe.
pub fn run() -> anyhow::Result<()> {
    // --8<-- [start:pool]
    let pool = Pool::builder().threads(4).build()?;

    // submit + as_completed: results as they finish, with each one's position.
    let handles = (1..=20).map(|n| pool.submit_blocking(move || checksum(n))).collect::<Result<Vec<_>, _>>()?;
    let mut finished = Vec::new();
    for (index, result) in as_completed(handles).blocking() {
        ensure!(result? == checksum(index as u64 + 1), "job {index} returned another checksum");
        finished.push(index);
    }
    finished.sort_unstable();
    ensure!(finished == (0..20).collect::<Vec<_>>(), "every job finished once: {finished:?}");
    println!("20 checksums on 4 threads, taken as they finished");

    // map: in input order, at most 3 in flight, the input read as the window moves.
    let words = ["pool", "map", "keeps", "order"].map(str::to_owned);
    let lengths: Vec<usize> =
        pool.map_blocking(words, 3, |word| word.len()).blocking().collect::<Result<_, JobError>>()?;
    ensure!(lengths == [4, 3, 5, 5], "lengths in input order: {lengths:?}");
    println!("map: {lengths:?}");
    // --8<-- [end:pool]

    // A panic is the job's error, not the pool's end (Rust's panic hook prints its message).
    let panicked = pool.submit_blocking(|| -> u64 { panic!("bad input") })?.wait();
    ensure!(matches!(panicked, Err(JobError::Panicked(_))), "the panic is reported: {panicked:?}");
    let after = pool.submit_blocking(|| checksum(1))?.wait()?;
    ensure!(after == checksum(1), "the pool still runs jobs");
    println!("a panicking job: {}; the next job ran", panicked.err().map(|e| e.to_string()).unwrap_or_default());

    // wait(FIRST_COMPLETED): the quick job is done, the slow one is not.
    let slow = pool.submit_blocking(|| std::thread::sleep(Duration::from_millis(500)))?;
    let quick = pool.submit_blocking(|| ())?;
    let waited = wait_blocking(vec![slow, quick], ReturnWhen::FirstCompleted, None);
    ensure!(waited.done.len() == 1 && waited.not_done.len() == 1, "one done, one running");
    println!("wait(FIRST_COMPLETED): {} done, {} not done", waited.done.len(), waited.not_done.len());
    Ok(())
}
