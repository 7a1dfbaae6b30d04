//! Retries on every broker: automatic and explicit, exhausted, durable (not a sleep).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

mod common;

use artel::{Registry, ResultError, State, TaskError, TaskErrorKind, WorkerConfig};

/// Fails until attempt `succeed_on`.
#[artel::task(max_retries = 3, autoretry, retry_backoff_ms = 20)]
async fn flaky(run: String, succeed_on: u32) -> Result<String, TaskError> {
    let n = common::attempt(&run);
    if n < succeed_on { Err(TaskError::msg(format!("attempt {n} failed"))) } else { Ok(format!("ok after {n}")) }
}

/// Always fails.
#[artel::task(max_retries = 2, autoretry, retry_backoff_ms = 20)]
async fn doomed(run: String) -> Result<(), TaskError> {
    Err(TaskError::msg(format!("attempt {} failed", common::attempt(&run))))
}

/// Asks for one retry in `countdown_ms`, then succeeds; no autoretry needed.
#[artel::task]
async fn busy(run: String, countdown_ms: u64) -> Result<u32, TaskError> {
    match common::attempt(&run) {
        1 => Err(TaskError::retry("resource busy").after(Duration::from_millis(countdown_ms))),
        n => Ok(n),
    }
}

fn registry() -> Registry {
    Registry::new().with(flaky).with(doomed).with(busy)
}

const WAIT: Duration = Duration::from_secs(20);

fn config() -> WorkerConfig {
    WorkerConfig { concurrency: 8, prefetch: 8, ..WorkerConfig::default() }
}

async fn apps() -> Vec<common::BrokerApp> {
    common::apps(registry, config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_task_succeeds_after_automatic_retries() {
    for (name, app, _cleanup) in apps().await {
        let run = format!("flaky-{name}-{}", uuid::Uuid::new_v4());
        let result = flaky::delay(&app, run, 3).await.expect("sent");
        assert_eq!(result.get(WAIT).await.expect("value"), "ok after 3", "{name}");
        let stats = app.worker_stats().expect("worker");
        assert_eq!(stats.retried.load(Ordering::Relaxed), 2, "{name}: two retries scheduled");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_keeps_failing_fails_after_max_retries() {
    for (name, app, _cleanup) in apps().await {
        let run = format!("doomed-{name}-{}", uuid::Uuid::new_v4());
        let result = doomed::delay(&app, run.clone()).await.expect("sent");
        let err = result.get(WAIT).await.expect_err("fails");
        let ResultError::Task { error, .. } = err else { panic!("{name}: {err}") };
        assert_eq!((error.kind(), error.message()), (TaskErrorKind::Failed, "attempt 3 failed"), "{name}");
        let traceback = Some("gave up after 2 retries\nRuntimeError: attempt 3 failed");
        assert_eq!(error.traceback(), traceback, "{name}: what happened, then the error as Python's last line");
        assert_eq!(result.state().await.expect("state"), State::Failure, "{name}");
        assert_eq!(common::attempt(&run), 4, "{name}: exactly three attempts ran before this one");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_retry_waits_in_the_broker_not_in_the_worker() {
    for (name, app, _cleanup) in apps().await {
        let run = format!("busy-{name}-{}", uuid::Uuid::new_v4());
        let sent = Instant::now();
        let result = busy::delay(&app, run, 600).await.expect("sent");
        // Within the countdown: the client sees RETRY and the worker runs nothing.
        let deadline = Instant::now() + Duration::from_secs(5);
        while result.state().await.expect("state") != State::Retry {
            assert!(Instant::now() < deadline, "{name}: never saw RETRY");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stats = app.worker_stats().expect("worker");
        assert_eq!(stats.active.load(Ordering::Relaxed), 0, "{name}: no task sleeps in the worker");
        assert_eq!(result.get(WAIT).await.expect("value"), 2, "{name}");
        assert!(sent.elapsed() >= Duration::from_millis(600), "{name}: ran after {:?}", sent.elapsed());
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_records_each_tasks_latest_state_in_the_history() {
    for (name, app, _cleanup) in apps().await {
        let Some(history) = app.backend().history().cloned() else {
            eprintln!("skipped on {name}: it keeps no task history");
            continue;
        };
        let (flaky_run, doomed_run) =
            (format!("h-flaky-{}", uuid::Uuid::new_v4()), format!("h-doomed-{}", uuid::Uuid::new_v4()));
        let recovered = flaky::delay(&app, flaky_run, 2).await.expect("sent");
        let failed = doomed::delay(&app, doomed_run).await.expect("sent");
        recovered.get(WAIT).await.expect("value");
        failed.get(WAIT).await.expect_err("fails");
        app.shutdown().await;
        // The worker writes what is left of its history as it stops.
        let recovered = history.find(recovered.id()).await.expect("find").expect("recorded");
        assert_eq!(
            (recovered.state, recovered.retries, recovered.task.as_str()),
            (State::Success, 1, "flaky"),
            "{name}"
        );
        assert!(recovered.runtime_ms.is_some() && recovered.started_at_ms.is_some(), "{name}: {recovered:?}");
        assert!(recovered.sent_at_ms.is_some_and(|sent| sent <= recovered.updated_at_ms), "{name}: {recovered:?}");
        let failed = history.find(failed.id()).await.expect("find").expect("recorded");
        assert_eq!((failed.state, failed.retries), (State::Failure, 2), "{name}");
        assert!(failed.error.as_deref().is_some_and(|e| e.contains("attempt 3 failed")), "{name}: {failed:?}");
        let listed = history
            .recent(&artel::core::TaskFilter { state: Some(State::Failure), limit: 10, ..Default::default() })
            .await
            .expect("recent");
        assert!(listed.iter().any(|r| r.task_id == failed.task_id), "{name}: the failed list holds it");
        let finished: u64 =
            history.throughput(0).await.expect("throughput").iter().map(|m| m.succeeded + m.failed).sum();
        assert!(finished >= 2, "{name}: {finished} finished");
    }
}
