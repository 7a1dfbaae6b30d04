//! Python:
//! ```python
//! async def main():
//!     loop = asyncio.get_running_loop()
//!     pages = await asyncio.gather(*(fetch(url) for url in urls))              # async I/O
//!     sums = await asyncio.gather(*(loop.run_in_executor(None, checksum, p) for p in pages))
//! ```
//! In artel, async jobs and blocking jobs go to one [`Pool`] and give the same
//! [`Handle`]s, awaited together; blocking work runs on the pool's threads and never
//! stalls the async jobs.

use std::time::{Duration, Instant};

use anyhow::ensure;
use artel::pool::{Handle, Pool};

fn checksum(page: &str) -> u64 {
    page.bytes().fold(0u64, |sum, b| sum.wrapping_mul(131).wrapping_add(u64::from(b)))
}

/// Runs the recipe.
pub fn run() -> anyhow::Result<()> {
    let pool = Pool::builder().threads(4).build()?;
    let started = Instant::now();
    // Eight "downloads" of 100 ms each, at once.
    let fetches: Vec<Handle<String>> = (0..8)
        .map(|n| {
            pool.submit(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                format!("page {n} ").repeat(10_000)
            })
        })
        .collect::<Result<_, _>>()?;
    let sums = pool.runtime().block_on(async {
        let mut pages = Vec::new();
        for fetch in fetches {
            pages.push(fetch.await?);
        }
        // The CPU-bound part on threads (run_in_executor), awaited like the rest.
        let mut sums = Vec::new();
        let jobs = pages.into_iter().map(|page| pool.submit_blocking(move || checksum(&page))).collect::<Vec<_>>();
        for job in jobs {
            sums.push(job?.await?);
        }
        anyhow::Ok(sums)
    })?;
    let took = started.elapsed();
    ensure!(sums.len() == 8 && sums[3] == checksum(&"page 3 ".repeat(10_000)), "each page's checksum, in order");
    ensure!(took < Duration::from_millis(800), "eight 100 ms fetches overlapped: {took:?}");
    println!("8 fetches of 100 ms and 8 checksums on threads in {} ms", took.as_millis());
    Ok(())
}
