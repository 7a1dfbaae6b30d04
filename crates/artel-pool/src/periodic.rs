//! [`Periodic`]: call a function every interval until stopped.
//!
//! Spacing is measured from the start of the previous run (futurist's `last_started`):
//! a run longer than the interval is followed at once by the next, never overlapped.
//! A panicking run is counted as a failure and the schedule goes on.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::runtime::Handle as RuntimeHandle;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::catch_unwind::CatchUnwind;

/// A running periodic call; stops when [`Periodic::stop`] is called or it is dropped.
///
/// ```
/// use std::time::Duration;
/// use artel_pool::{Periodic, Pool};
///
/// let pool = Pool::new()?;
/// let heartbeat = Periodic::every(Duration::from_millis(10))
///     .jitter(Duration::from_millis(2))
///     .run_immediately(true)
///     .start(pool.runtime(), || async { /* report, refresh, clean up */ });
/// std::thread::sleep(Duration::from_millis(100));
/// assert!(heartbeat.runs() >= 3);
/// heartbeat.stop();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Periodic {
    stop: CancellationToken,
    counts: Arc<Counts>,
    task: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Counts {
    runs: AtomicU64,
    failures: AtomicU64,
}

/// Schedule settings for a [`Periodic`].
#[derive(Debug, Clone, Copy)]
pub struct PeriodicBuilder {
    interval: Duration,
    jitter: Duration,
    run_immediately: bool,
}

impl Periodic {
    /// A call every `interval`; set jitter and the first run, then `start`.
    pub fn every(interval: Duration) -> PeriodicBuilder {
        PeriodicBuilder { interval, jitter: Duration::ZERO, run_immediately: false }
    }

    /// Completed runs so far.
    pub fn runs(&self) -> u64 {
        self.counts.runs.load(Ordering::Relaxed)
    }

    /// Runs that panicked.
    pub fn failures(&self) -> u64 {
        self.counts.failures.load(Ordering::Relaxed)
    }

    /// Stops scheduling; a run in progress finishes. Safe to call twice.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Stops and waits until a run in progress has finished.
    pub async fn join(mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl PeriodicBuilder {
    /// Adds a random delay of up to `max` to every spacing, so many schedulers do not fire together.
    pub fn jitter(mut self, max: Duration) -> Self {
        self.jitter = max;
        self
    }

    /// Runs once right away instead of after the first interval.
    pub fn run_immediately(mut self, yes: bool) -> Self {
        self.run_immediately = yes;
        self
    }

    fn spacing(&self) -> Duration {
        let jitter = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX);
        self.interval + Duration::from_nanos(if jitter == 0 { 0 } else { fastrand::u64(0..=jitter) })
    }

    /// Starts calling `f` on `runtime` (e.g. [`crate::Pool::runtime`]).
    pub fn start<F, Fut>(self, runtime: &RuntimeHandle, mut f: F) -> Periodic
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let counts = Arc::new(Counts::default());
        let (token, tally) = (stop.clone(), counts.clone());
        let task = runtime.spawn(async move {
            let mut next = Instant::now() + if self.run_immediately { Duration::ZERO } else { self.spacing() };
            loop {
                tokio::select! {
                    biased;
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep_until(next) => {}
                }
                let started = Instant::now();
                if CatchUnwind::new(f()).await.is_err() {
                    tally.failures.fetch_add(1, Ordering::Relaxed);
                }
                tally.runs.fetch_add(1, Ordering::Relaxed);
                next = started + self.spacing();
            }
        });
        Periodic { stop, counts, task: Some(task) }
    }
}
