//! Retries on every broker: automatic and explicit, exhausted, durable (not a sleep).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use artel::{App, Registry, ResultError, State, TaskError, TaskErrorKind, WorkerConfig, connect};
use artel_broker_tests::ScratchDb;

static ATTEMPTS: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

/// Counts attempts per run id, so tests on different brokers do not share counters.
fn attempt(run: &str) -> u32 {
    let mut guard = ATTEMPTS.lock().unwrap_or_else(|e| e.into_inner());
    let n = guard.get_or_insert_with(HashMap::new).entry(run.to_owned()).or_default();
    *n += 1;
    *n
}

/// Fails until attempt `succeed_on`.
#[artel::task(max_retries = 3, autoretry, retry_backoff_ms = 20)]
async fn flaky(run: String, succeed_on: u32) -> Result<String, TaskError> {
    let n = attempt(&run);
    if n < succeed_on { Err(TaskError::msg(format!("attempt {n} failed"))) } else { Ok(format!("ok after {n}")) }
}

/// Always fails.
#[artel::task(max_retries = 2, autoretry, retry_backoff_ms = 20)]
async fn doomed(run: String) -> Result<(), TaskError> {
    Err(TaskError::msg(format!("attempt {} failed", attempt(&run))))
}

/// Asks for one retry in `countdown_ms`, then succeeds; no autoretry needed.
#[artel::task]
async fn busy(run: String, countdown_ms: u64) -> Result<u32, TaskError> {
    match attempt(&run) {
        1 => Err(TaskError::retry("resource busy").after(Duration::from_millis(countdown_ms))),
        n => Ok(n),
    }
}

fn registry() -> Registry {
    Registry::new().with(flaky).with(doomed).with(busy)
}

const WAIT: Duration = Duration::from_secs(20);

/// The brokers to run on: memory, a scratch SQLite file, and Redis when it answers.
async fn apps() -> Vec<(&'static str, App, Box<dyn Send>)> {
    let config = || WorkerConfig { concurrency: 8, prefetch: 8, ..WorkerConfig::default() };
    let mut apps = vec![("memory", App::local_with(registry(), config()).expect("app"), Box::new(()) as Box<dyn Send>)];
    let db = ScratchDb::new("retries");
    let sqlite = connect(&format!("sqlite://{}?poll_ms=10", db.path().display())).await.expect("sqlite");
    apps.push((
        "sqlite",
        App::with_worker(sqlite.broker, sqlite.backend, registry(), config()).expect("app"),
        Box::new(db),
    ));
    let redis_url = std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    match connect(&format!("{redis_url}?prefix={prefix}&poll_ms=20")).await {
        Ok(redis) => {
            let cleanup = RedisPrefix(redis.redis.clone());
            apps.push((
                "redis",
                App::with_worker(redis.broker, redis.backend, registry(), config()).expect("app"),
                Box::new(cleanup),
            ));
        }
        Err(e) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => panic!("Redis is required: {e}"),
        Err(e) => eprintln!("skipped on redis: {e}"),
    }
    apps
}

/// Removes the test's Redis keys at the end.
struct RedisPrefix(Option<artel::redis::RedisBroker>);
impl Drop for RedisPrefix {
    fn drop(&mut self) {
        if let Some(broker) = self.0.take() {
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async { broker.delete_namespace().await.ok() })
            })
            .join()
            .ok();
        }
    }
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
        assert_eq!(error.traceback(), Some("gave up after 2 retries"), "{name}");
        assert_eq!(result.state().await.expect("state"), State::Failure, "{name}");
        assert_eq!(attempt(&run), 4, "{name}: exactly three attempts ran before this one");
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
