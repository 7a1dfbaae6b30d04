//! Retry policies: how long to wait before attempt N, and how many attempts to make.
//!
//! The exponential wait follows tenacity's `wait_exponential(multiplier, max, exp_base,
//! min)`: before retry `n` (1-based) it is `multiplier * exp_base^(n-1)`, clamped to
//! `[min, max]`. Full jitter (AWS's and tenacity's `wait_random_exponential`) then draws
//! uniformly from `[0, that]`, so retrying clients spread out instead of stampeding.
//! Randomness is passed in, so schedules are testable.

use std::future::Future;
use std::time::Duration;

/// Wait before each retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Wait before the first retry (tenacity's `multiplier`).
    pub multiplier: Duration,
    /// Growth per retry (tenacity's `exp_base`).
    pub exp_base: f64,
    /// Longest wait (cap).
    pub max: Duration,
    /// Shortest wait.
    pub min: Duration,
    /// Draw uniformly from `[0, wait]` instead of waiting exactly `wait`.
    pub full_jitter: bool,
}

impl Default for Backoff {
    /// 1 s, doubling, capped at 10 minutes, full jitter.
    fn default() -> Self {
        Self {
            multiplier: Duration::from_secs(1),
            exp_base: 2.0,
            max: Duration::from_secs(600),
            min: Duration::ZERO,
            full_jitter: true,
        }
    }
}

impl Backoff {
    /// Exponential without jitter: `multiplier * exp_base^(retry-1)` within `[min, max]`.
    pub fn exponential(multiplier: Duration, exp_base: f64, max: Duration) -> Self {
        Self { multiplier, exp_base, max, min: Duration::ZERO, full_jitter: false }
    }

    /// The same with full jitter.
    pub fn with_full_jitter(mut self) -> Self {
        self.full_jitter = true;
        self
    }

    /// The wait before retry `retry` (1 = the first retry); `unit` is a random number in
    /// `[0, 1)` used for jitter.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let secs = self.multiplier.as_secs_f64() * self.exp_base.powi(exponent);
        let capped = if secs.is_finite() { secs.min(self.max.as_secs_f64()) } else { self.max.as_secs_f64() };
        let wait = capped.max(self.min.as_secs_f64());
        let wait = if self.full_jitter { wait * unit.clamp(0.0, 1.0) } else { wait };
        Duration::try_from_secs_f64(wait).unwrap_or(self.max)
    }
}

/// How many times to retry, and how long to wait in between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; `None` retries forever.
    pub max_retries: Option<u32>,
    /// Waits between attempts.
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    /// Three retries (Celery's default) with the default backoff.
    fn default() -> Self {
        Self { max_retries: Some(3), backoff: Backoff::default() }
    }
}

impl RetryPolicy {
    /// A policy of `max_retries` retries with `backoff`.
    pub fn new(max_retries: u32, backoff: Backoff) -> Self {
        Self { max_retries: Some(max_retries), backoff }
    }

    /// Whether retry number `retry` (1-based) is still allowed.
    pub fn allows(&self, retry: u32) -> bool {
        self.max_retries.is_none_or(|max| retry <= max)
    }
}

/// Runs `attempt` until it succeeds or the policy is exhausted, sleeping the backoff in
/// between; returns the last error when it gives up.
///
/// ```
/// # tokio_test_block_on(async {
/// use artel_core::retry::{Backoff, RetryPolicy, retry};
/// use std::time::Duration;
/// let policy = RetryPolicy::new(5, Backoff::exponential(Duration::from_millis(1), 2.0, Duration::from_millis(10)));
/// let mut calls = 0;
/// let value = retry(policy, || {
///     calls += 1;
///     let ok = calls >= 3;
///     async move { if ok { Ok(calls) } else { Err("not yet") } }
/// })
/// .await;
/// assert_eq!(value, Ok(3));
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(f)
/// # }
/// ```
pub async fn retry<T, E, F, Fut>(policy: RetryPolicy, mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut retries = 0u32;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if !policy.allows(retries + 1) => return Err(error),
            Err(_) => {
                retries += 1;
                tokio::time::sleep(policy.backoff.delay(retries, fastrand::f64())).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    /// tenacity: wait_exponential(multiplier=1, max=10) gives 1, 2, 4, 8, 10, 10 ...
    #[test]
    fn exponential_follows_tenacitys_formula() {
        let b = Backoff::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(10));
        let waits: Vec<f64> = (1..=6).map(|n| secs(b.delay(n, 0.5))).collect();
        assert_eq!(waits, [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]);
        let b3 = Backoff::exponential(Duration::from_millis(500), 3.0, Duration::from_secs(60));
        let waits: Vec<f64> = (1..=4).map(|n| secs(b3.delay(n, 0.5))).collect();
        assert_eq!(waits, [0.5, 1.5, 4.5, 13.5]);
    }

    #[test]
    fn min_raises_short_waits_and_huge_exponents_stay_capped() {
        let b = Backoff {
            min: Duration::from_secs(3),
            ..Backoff::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(30))
        };
        assert_eq!(secs(b.delay(1, 0.0)), 3.0);
        assert_eq!(secs(b.delay(1000, 0.0)), 30.0, "2^999 overflows to infinity and is capped");
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_exponential_wait() {
        let b = Backoff::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(10)).with_full_jitter();
        for n in 1..=8 {
            let ceiling = Backoff { full_jitter: false, ..b }.delay(n, 0.0);
            assert_eq!(b.delay(n, 0.0), Duration::ZERO);
            assert_eq!(b.delay(n, 1.0), ceiling);
            assert_eq!(secs(b.delay(n, 0.25)), secs(ceiling) * 0.25);
        }
    }

    #[test]
    fn max_retries_bounds_the_attempts() {
        let p = RetryPolicy::new(3, Backoff::default());
        assert!(p.allows(1) && p.allows(3) && !p.allows(4));
        assert!(RetryPolicy { max_retries: None, ..p }.allows(u32::MAX));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_gives_up_with_the_last_error_after_max_retries() {
        let policy = RetryPolicy::new(2, Backoff::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(10)));
        let mut calls = 0;
        let started = tokio::time::Instant::now();
        let out: Result<(), String> = retry(policy, || {
            calls += 1;
            let n = calls;
            async move { Err(format!("failure {n}")) }
        })
        .await;
        assert_eq!(out, Err("failure 3".to_owned()), "first attempt + 2 retries");
        assert_eq!(started.elapsed(), Duration::from_secs(3), "waited 1 s then 2 s");
    }
}
