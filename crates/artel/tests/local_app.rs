//! `#[artel::task]` + `App::local()`: tasks sent by name run in-process and results come back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use artel::{App, Registry, ResultError, Signature, State, TaskError, TaskErrorKind};
use serde_json::json;

#[artel::task]
async fn add(x: i64, y: i64) -> Result<i64, TaskError> {
    Ok(x + y)
}

#[artel::task(name = "app.greet")]
async fn greet(name: String, punctuation: Option<String>) -> String {
    format!("hello {name}{}", punctuation.unwrap_or_default())
}

#[artel::task]
async fn fail(reason: String) -> Result<(), TaskError> {
    Err(TaskError::msg(reason))
}

#[artel::task]
async fn io_error() -> Result<u8, TaskError> {
    std::fs::read("/definitely/not/here")?;
    Ok(0)
}

#[artel::task]
async fn explode() -> u8 {
    panic!("kaboom")
}

#[artel::task]
async fn nap(millis: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    millis
}

/// Blocks its thread; must not run on the async runtime's thread.
#[artel::task(blocking)]
fn grind(millis: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(millis));
    millis
}

fn registry() -> Registry {
    Registry::new().with(add).with(greet).with(fail).with(io_error).with(explode).with(nap).with(grind)
}

const WAIT: Duration = Duration::from_secs(5);

fn task_error(err: ResultError) -> TaskError {
    match err {
        ResultError::Task { error, .. } => error,
        other => panic!("expected a task error, got {other}"),
    }
}

#[tokio::test]
async fn delay_runs_the_task_and_get_returns_its_value() {
    let app = App::local(registry()).expect("app");
    let result = add::delay(&app, 2, 3).await.expect("sent");
    assert_eq!(result.get(WAIT).await.expect("value"), 5);
    assert_eq!(result.state().await.expect("state"), State::Success);
    assert!(result.ready().await.expect("ready"));
    app.shutdown().await;
}

/// `#[tokio::test]` runs on one thread: had `grind` blocked it, nothing else could finish first.
#[tokio::test]
async fn blocking_tasks_run_off_the_async_threads() {
    let app = App::local(registry()).expect("app");
    let slow = grind::delay(&app, 400).await.expect("sent");
    tokio::time::sleep(Duration::from_millis(50)).await; // let the worker start it
    let quick = add::delay(&app, 1, 2).await.expect("sent");
    assert_eq!(quick.get(WAIT).await.expect("value"), 3);
    assert_eq!(slow.state().await.expect("state"), State::Pending, "still grinding on its own thread");
    assert_eq!(slow.get(WAIT).await.expect("value"), 400);
    assert_eq!(grind::call(1), 1, "a blocking task's body is a plain fn");
    app.shutdown().await;
}

#[tokio::test]
async fn the_body_can_still_be_called_directly() {
    assert_eq!(add::call(20, 22).await.expect("value"), 42);
}

#[tokio::test]
async fn custom_names_optional_params_and_keyword_arguments() {
    let app = App::local(registry()).expect("app");
    let by_position = greet::delay(&app, "ana".into(), None).await.expect("sent");
    assert_eq!(by_position.get(WAIT).await.expect("value"), "hello ana");
    // As a Python client would send it: by name, with keyword arguments.
    let by_name =
        app.send_task(Signature::new("app.greet").kwarg("name", "bo").kwarg("punctuation", "!")).await.expect("sent");
    assert_eq!(by_name.get(WAIT).await.expect("value"), json!("hello bo!"));
    app.shutdown().await;
}

#[tokio::test]
async fn a_failing_task_reports_its_error() {
    let app = App::local(registry()).expect("app");
    let err = fail::delay(&app, "bad input".into()).await.expect("sent").get(WAIT).await.expect_err("fails");
    let error = task_error(err);
    assert_eq!((error.kind(), error.message()), (TaskErrorKind::Failed, "bad input"));

    let err = io_error::delay(&app).await.expect("sent").get(WAIT).await.expect_err("fails");
    assert!(task_error(err).message().contains("No such file"), "std errors convert with `?`");
    app.shutdown().await;
}

#[tokio::test]
async fn a_panicking_task_fails_and_the_worker_keeps_serving() {
    let app = App::local(registry()).expect("app");
    let err = explode::delay(&app).await.expect("sent").get(WAIT).await.expect_err("panics");
    let error = task_error(err);
    assert_eq!((error.kind(), error.message()), (TaskErrorKind::Panicked, "kaboom"));
    assert_eq!(add::delay(&app, 1, 1).await.expect("sent").get(WAIT).await.expect("value"), 2);
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_tasks_and_bad_arguments_are_rejected_with_a_reason() {
    let app = App::local(registry()).expect("app");
    let unknown = app.send_task(Signature::new("no.such.task")).await.expect("sent");
    let error = task_error(unknown.get(WAIT).await.expect_err("not registered"));
    assert_eq!(
        (error.kind(), error.exc_type(), error.message()),
        (TaskErrorKind::NotRegistered, "NotRegistered", "no.such.task")
    );

    let wrong = app.send_task(Signature::new("add").with_args(vec![json!("two"), json!(3)])).await.expect("sent");
    let error = task_error(wrong.get(WAIT).await.expect_err("bad arguments"));
    assert_eq!(error.kind(), TaskErrorKind::InvalidArguments);
    assert!(error.message().starts_with("add(): argument `x`: invalid type: string \"two\""), "{error}");

    let stats = app.worker_stats().expect("local worker");
    assert_eq!(stats.rejected.load(Ordering::Relaxed), 2);
    assert_eq!(add::delay(&app, 2, 2).await.expect("sent").get(WAIT).await.expect("still serving"), 4);
    app.shutdown().await;
}

#[tokio::test]
async fn countdown_tasks_run_no_earlier_than_due() {
    let app = App::local(registry()).expect("app");
    let sent_at = Instant::now();
    let result = add::s(1, 2).with(|s| s.countdown(Duration::from_millis(300))).delay(&app).await.expect("sent");
    assert_eq!(result.state().await.expect("state"), State::Pending);
    assert_eq!(result.get(WAIT).await.expect("value"), 3);
    assert!(sent_at.elapsed() >= Duration::from_millis(300), "ran after {:?}", sent_at.elapsed());
    app.shutdown().await;
}

#[tokio::test]
async fn a_hard_time_limit_stops_a_long_task() {
    let app = App::local(registry()).expect("app");
    let result = nap::s(10_000).with(|s| s.time_limit(Duration::from_millis(50))).delay(&app).await.expect("sent");
    let error = task_error(result.get(WAIT).await.expect_err("time limit"));
    assert_eq!((error.kind(), error.exc_type()), (TaskErrorKind::TimedOut, "TimeLimitExceeded"));
    app.shutdown().await;
}

#[tokio::test]
async fn expired_tasks_are_revoked_not_run() {
    let app = App::local(registry()).expect("app");
    let result = nap::s(1)
        .with(|s| s.countdown(Duration::from_millis(100)).expires_in(Duration::from_millis(10)))
        .delay(&app)
        .await
        .expect("sent");
    let error = task_error(result.get(WAIT).await.expect_err("expired"));
    assert_eq!((error.kind(), error.message()), (TaskErrorKind::Revoked, "expired"));
    assert_eq!(result.state().await.expect("state"), State::Revoked);
    app.shutdown().await;
}

#[tokio::test]
async fn ignore_result_stores_nothing() {
    let app = App::local(registry()).expect("app");
    let quiet = add::s(1, 1).with(|s| s.ignore_result(true)).delay(&app).await.expect("sent");
    let marker = add::delay(&app, 0, 0).await.expect("sent");
    marker.get(WAIT).await.expect("later task finished");
    assert_eq!(quiet.state().await.expect("state"), State::Pending);
    assert!(matches!(quiet.get(Duration::from_millis(20)).await, Err(ResultError::Timeout { .. })));
    app.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_running_tasks_finish() {
    let app = App::local(registry()).expect("app");
    let results = app.backend().results().clone();
    let slow = nap::delay(&app, 150).await.expect("sent");
    tokio::time::sleep(Duration::from_millis(30)).await;
    app.shutdown().await;
    let stored = results.get(slow.id()).await.expect("backend").expect("stored before shutdown returned");
    assert_eq!((stored.status, stored.result), (State::Success, json!(150)));
}

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[artel::task]
async fn probe() -> usize {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    PEAK.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    now
}

#[tokio::test]
async fn tasks_run_concurrently_up_to_the_configured_limit() {
    let config = artel::WorkerConfig { concurrency: 25, ..Default::default() };
    let app = App::local_with(Registry::new().with(probe), config).expect("app");
    let mut results = Vec::new();
    for _ in 0..200 {
        results.push(probe::delay(&app).await.expect("sent"));
    }
    for r in results {
        r.get(WAIT).await.expect("value");
    }
    assert_eq!(PEAK.load(Ordering::SeqCst), 25, "the worker fills its concurrency and never exceeds it");
    app.shutdown().await;
}

/// At most 20 runs a second per worker.
#[artel::task(rate_limit = "20/s")]
async fn limited() -> u8 {
    1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_spaces_out_a_tasks_runs() {
    let app = App::local(Registry::new().with(limited).with(add)).expect("app");
    let started = Instant::now();
    let mut results = Vec::new();
    for _ in 0..30 {
        results.push(limited::delay(&app).await.expect("sent"));
    }
    // An unlimited task is not held up behind the limited ones.
    assert_eq!(add::delay(&app, 1, 1).await.expect("sent").get(WAIT).await.expect("value"), 2);
    assert!(started.elapsed() < Duration::from_millis(400), "unlimited task waited {:?}", started.elapsed());
    for r in results {
        r.get(WAIT).await.expect("value");
    }
    // A burst of 20, then one every 50 ms: the last of 30 cannot start before ~500 ms.
    assert!(started.elapsed() >= Duration::from_millis(400), "30 runs at 20/s took only {:?}", started.elapsed());
    app.shutdown().await;
}

#[tokio::test]
async fn track_started_stores_started_with_the_workers_pid() {
    let config = artel::WorkerConfig { track_started: true, ..Default::default() };
    let app = App::local_with(registry(), config).expect("app");
    let slow = nap::delay(&app, 300).await.expect("sent");
    let deadline = Instant::now() + Duration::from_secs(5);
    while slow.state().await.expect("state") != State::Started {
        assert!(Instant::now() < deadline, "never saw STARTED");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = app.backend().results().get(slow.id()).await.expect("backend").expect("stored");
    assert_eq!(started.result["pid"], json!(std::process::id()));
    assert_eq!(slow.get(WAIT).await.expect("value"), 300);
    assert_eq!(slow.state().await.expect("state"), State::Success);
    app.shutdown().await;
}
