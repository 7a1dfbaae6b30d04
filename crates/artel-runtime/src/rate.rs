//! Per-task rate limits (`rate_limit = "100/s"`), one token bucket per task and worker.
//!
//! A run waits for a token before it starts; like Celery, the waiting run holds its
//! worker slot, so a limited task slows only itself and the slots it occupies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Parses Celery's rate format (`N/s`, `N/m` or `N/h` with N > 0) as a token bucket of N
/// tokens refilled over the period.
pub fn parse_rate(text: &str) -> Result<Quota, String> {
    let (count, period) = artel_core::rates::parse(text)?;
    Quota::with_period(period / count.get())
        .map(|quota| quota.allow_burst(count))
        .ok_or_else(|| format!("rate limit {text:?} is faster than one run a nanosecond"))
}

/// The limiters of one worker, by task name.
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    by_task: Mutex<HashMap<String, Bucket>>,
}

/// The limit a task's bucket enforces, and the bucket (none when the limit cannot be read).
type Bucket = (String, Option<Arc<DefaultDirectRateLimiter>>);

impl RateLimits {
    /// Waits until `task` may run under `limit` (none: at once). A task whose limit
    /// changed (remote control) gets a new bucket.
    pub(crate) async fn wait(&self, task: &str, limit: Option<&str>) {
        let Some(limit) = limit else { return };
        let limiter = {
            let mut by_task = self.by_task.lock().unwrap_or_else(|e| e.into_inner());
            match by_task.get(task) {
                Some((enforced, limiter)) if enforced == limit => limiter.clone(),
                _ => {
                    let limiter = match parse_rate(limit) {
                        Ok(quota) => Some(Arc::new(RateLimiter::direct(quota))),
                        Err(problem) => {
                            tracing::error!(task, %problem, "ignoring the task's rate limit");
                            None
                        }
                    };
                    by_task.insert(task.to_owned(), (limit.to_owned(), limiter.clone()));
                    limiter
                }
            }
        };
        if let Some(limiter) = limiter {
            limiter.until_ready().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    #[test]
    fn celery_rate_strings_parse_and_nonsense_is_explained() {
        assert_eq!(parse_rate("100/s"), Ok(Quota::per_second(NonZeroU32::new(100).expect("nonzero"))));
        assert_eq!(parse_rate("10/m"), Ok(Quota::per_minute(NonZeroU32::new(10).expect("nonzero"))));
        assert_eq!(parse_rate(" 5 / h "), Ok(Quota::per_hour(NonZeroU32::new(5).expect("nonzero"))));
        for bad in ["", "10", "0/s", "-1/s", "10/d", "ten/s"] {
            assert!(parse_rate(bad).is_err_and(|e| e.contains("N/s, N/m or N/h")), "{bad:?}");
        }
    }
}
