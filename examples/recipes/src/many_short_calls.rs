//! Python:
//! ```python
//! def call(i): time.sleep(0.1); return i * 2        # 10,000 calls of 100 ms (I/O-bound)
//! with multiprocessing.Pool(200) as pool:
//!     for i in range(10_000): pool.apply_async(call, (i,), callback=results.append)
//!     pool.close(); pool.join()                      # 200 processes, 10,000 / 200 * 0.1 s
//! ```
//! In artel a call that waits is a future, not a process: 10,000 at once cost a few
//! megabytes and finish in about one call's time, in input order, with a bounded window
//! so memory stays flat however long the input is. Both run here and are timed.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::ensure;
use artel::pool::{JobError, Pool};

const CALLS: u64 = 10_000;

const PYTHON: &str = r#"
import multiprocessing, time
def call(i):
    time.sleep(0.1)
    return i * 2
if __name__ == "__main__":
    started = time.perf_counter()
    results = []
    with multiprocessing.Pool(200) as pool:
        for i in range(10_000):
            pool.apply_async(call, (i,), callback=results.append)
        pool.close()
        pool.join()
    assert sorted(results) == [i * 2 for i in range(10_000)]
    print(time.perf_counter() - started)
"#;

/// Runs the recipe.
pub fn run() -> anyhow::Result<()> {
    let pool = Pool::builder().build()?;
    let started = Instant::now();
    // --8<-- [start:map]
    let doubled: Vec<u64> = pool
        .map(0..CALLS, 10_000, |i| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            i * 2
        })
        .blocking()
        .collect::<Result<_, JobError>>()?;
    // --8<-- [end:map]
    let took = started.elapsed();
    ensure!(doubled.iter().copied().eq((0..CALLS).map(|i| i * 2)), "every call's result, in input order");
    ensure!(took < Duration::from_secs(5), "10,000 calls of 100 ms at once take about 100 ms, not {took:?}");
    println!("artel Pool::map, window 10,000: {CALLS} calls of 100 ms in {:.2} s", took.as_secs_f64());

    let python = std::env::var("ARTEL_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    match Command::new(&python).args(["-c", PYTHON]).output() {
        Ok(out) if out.status.success() => {
            let seconds: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
            println!(
                "Python multiprocessing.Pool(200), apply_async: {CALLS} calls in {seconds:.2} s ({:.0}x artel's time)",
                seconds / took.as_secs_f64()
            );
        }
        Ok(out) => anyhow::bail!("the Python recipe failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(error) => println!("({python} not found, {error}: the Python recipe was not timed)"),
    }
    Ok(())
}
