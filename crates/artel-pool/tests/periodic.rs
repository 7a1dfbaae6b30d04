//! Periodic calls: spacing, jitter bounds, panics, stop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artel_pool::Periodic;
use tokio::time::{Instant, sleep};

#[tokio::test(start_paused = true)]
async fn runs_every_interval_until_stopped() {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let periodic = Periodic::every(Duration::from_secs(1)).start(&tokio::runtime::Handle::current(), move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
        }
    });
    sleep(Duration::from_millis(3_500)).await;
    assert_eq!(periodic.runs(), 3, "first run after one interval, then every second");
    periodic.stop();
    periodic.stop(); // stopping twice is fine
    sleep(Duration::from_secs(5)).await;
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn run_immediately_fires_at_start() {
    let periodic = Periodic::every(Duration::from_secs(10))
        .run_immediately(true)
        .start(&tokio::runtime::Handle::current(), || async {});
    sleep(Duration::from_millis(1)).await;
    assert_eq!(periodic.runs(), 1);
    periodic.join().await;
}

#[tokio::test(start_paused = true)]
async fn jitter_stays_within_its_bound() {
    let starts = Arc::new(Mutex::new(Vec::new()));
    let s = starts.clone();
    let periodic = Periodic::every(Duration::from_millis(100)).jitter(Duration::from_millis(50)).start(
        &tokio::runtime::Handle::current(),
        move || {
            let s = s.clone();
            async move { s.lock().expect("lock").push(Instant::now()) }
        },
    );
    sleep(Duration::from_secs(10)).await;
    periodic.join().await;
    let starts = starts.lock().expect("lock");
    assert!(starts.len() >= 60, "{} runs", starts.len());
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g >= Duration::from_millis(100) && *g <= Duration::from_millis(151)), "{gaps:?}");
    assert!(gaps.iter().any(|g| *g > Duration::from_millis(110)), "jitter is applied");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_run_is_counted_and_the_schedule_goes_on() {
    let periodic = Periodic::every(Duration::from_secs(1))
        .start(&tokio::runtime::Handle::current(), || async { panic!("tick failed") });
    sleep(Duration::from_millis(2_500)).await;
    assert_eq!((periodic.runs(), periodic.failures()), (2, 2));
}
