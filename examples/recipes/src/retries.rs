//! Python (tenacity):
//! ```python
//! @retry(stop=stop_after_attempt(5), wait=wait_random_exponential(multiplier=0.01, max=0.1))
//! def fetch(): ...
//! ```
//! artel's [`artel::retry()`] takes the same policy (tenacity's exponential formula, full
//! jitter) for any async call; the same [`RetryPolicy`] is what a task's `max_retries` /
//! `retry_backoff` use on the queue, where the wait is an ETA held by the broker and not
//! a sleep in the worker.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use artel::{Backoff, RetryPolicy, retry};

fn policy() -> RetryPolicy {
    RetryPolicy::new(
        4,
        Backoff::exponential(Duration::from_millis(10), 2.0, Duration::from_millis(100)).with_full_jitter(),
    )
}

/// Runs the recipe.
pub fn run() -> anyhow::Result<()> {
    let runtime = crate::runtime()?;
    // Fails twice, then answers.
    let calls = AtomicU32::new(0);
    let flaky = || async {
        match calls.fetch_add(1, Ordering::Relaxed) + 1 {
            attempt @ 1..=2 => Err(format!("attempt {attempt}: connection reset")),
            attempt => Ok(attempt),
        }
    };
    let answered = runtime.block_on(retry(policy(), flaky));
    ensure!(answered == Ok(3), "answered on the third attempt: {answered:?}");
    println!("a call failing twice answered on attempt 3");

    // Always failing: gives up after 1 + 4 attempts with the last error.
    let started = Instant::now();
    let attempts = AtomicU32::new(0);
    let broken = || async {
        let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
        Err::<(), _>(format!("attempt {attempt}: refused"))
    };
    let gave_up = runtime.block_on(retry(policy(), broken));
    ensure!(gave_up == Err("attempt 5: refused".to_owned()), "the last error: {gave_up:?}");
    ensure!(started.elapsed() < Duration::from_secs(1), "waits of at most 10, 20, 40, 80 ms");
    println!(
        "a call that always fails: gave up after 5 attempts in {} ms with {:?}",
        started.elapsed().as_millis(),
        gave_up.err().unwrap_or_default()
    );
    Ok(())
}
