//! Time limits, revoke, the task context and state progression, on every broker.

mod common;

use std::time::{Duration, Instant};

use artel::{Context, Registry, ResultError, State, TaskError, TaskErrorKind, WorkerConfig};
use serde_json::{Value, json};

/// Waits for the soft limit, then returns what it was told.
#[artel::task(soft_time_limit_ms = 100, time_limit_ms = 5000)]
async fn tidy(ctx: Context) -> Result<String, TaskError> {
    ctx.cancelled().await;
    Ok(format!("cleaned up after {:?}", ctx.cancel_reason()))
}

/// Ignores every signal and sleeps on its thread far past any limit.
#[artel::task(blocking, time_limit_ms = 300)]
fn runaway(run: String) -> u32 {
    common::attempt(&run);
    std::thread::sleep(Duration::from_secs(3));
    common::attempt(&run)
}

/// Returns at once.
#[artel::task]
async fn quick(value: Value) -> Value {
    value
}

/// Reports progress `steps` times, then returns the retry count it ran with, after one
/// retry asked through the context.
#[artel::task]
async fn stepper(ctx: Context, steps: u32) -> Result<u32, TaskError> {
    if ctx.retries() == 0 {
        return Err(ctx.retry("once more").after(Duration::from_millis(10)));
    }
    for done in 1..=steps {
        ctx.progress(json!({"done": done, "total": steps})).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(ctx.retries())
}

/// Counts its runs under `run`; rate limited so a second call waits RECEIVED.
#[artel::task(rate_limit = "1/s")]
async fn counted(run: String, hold_ms: u64) -> u32 {
    let n = common::attempt(&run);
    tokio::time::sleep(Duration::from_millis(hold_ms)).await;
    n
}

/// Runs until stopped.
#[artel::task]
async fn forever(ctx: Context, run: String) -> Result<(), TaskError> {
    common::attempt(&run);
    ctx.cancelled().await;
    ctx.check()
}

fn registry() -> Registry {
    Registry::new()
        .with(tidy)
        .with(runaway)
        .with(quick)
        .with(stepper)
        .with(counted)
        .with(forever)
        .with(artel::builtins::exec)
}

fn config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 8,
        prefetch: 8,
        track_started: true,
        track_received: true,
        revoke_poll: Duration::from_millis(50),
        ..WorkerConfig::default()
    }
}

const WAIT: Duration = Duration::from_secs(10);

fn run_id(what: &str, broker: &str) -> String {
    format!("{what}-{broker}-{}", uuid::Uuid::new_v4())
}

fn task_error(err: ResultError) -> TaskError {
    match err {
        ResultError::Task { error, .. } => error,
        other => panic!("expected a task error, got {other}"),
    }
}

/// Polls `result` until it reads `state` (10 s at most).
async fn until_state<T>(result: &artel::AsyncResult<T>, state: State, broker: &str) {
    let deadline = Instant::now() + WAIT;
    while result.state().await.expect("state") != state {
        assert!(Instant::now() < deadline, "{broker}: never saw {state:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soft_limit_lets_the_task_clean_up_and_a_call_may_override_it() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let started = Instant::now();
        let declared = tidy::delay(&app).await.expect("sent");
        assert_eq!(declared.get(WAIT).await.expect("value"), "cleaned up after Some(SoftTimeLimit)", "{name}");
        assert!(started.elapsed() < Duration::from_secs(3), "{name}: the soft limit, not the hard one");
        let per_call = tidy::s().with(|s| s.soft_time_limit(Duration::from_millis(600))).delay(&app).await;
        let per_call = per_call.expect("sent");
        let started = Instant::now();
        per_call.get(WAIT).await.expect("value");
        assert!(started.elapsed() >= Duration::from_millis(500), "{name}: the call's longer soft limit held");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_limit_abandons_a_runaway_blocking_task_and_the_worker_keeps_serving() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let run = run_id("runaway", name);
        let stuck = runaway::delay(&app, run.clone()).await.expect("sent");
        let error = task_error(stuck.get(WAIT).await.expect_err("aborted"));
        assert_eq!(error.kind(), TaskErrorKind::TimedOut, "{name}: {error}");
        assert_eq!(stuck.state().await.expect("state"), State::Failure, "{name}");
        assert_eq!(common::attempts(&run), 1, "{name}: the thread is still asleep, its result discarded");
        let next = quick::delay(&app, json!("still serving")).await.expect("sent");
        assert_eq!(next.get(WAIT).await.expect("value"), json!("still serving"), "{name}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_limit_kills_a_child_process_and_what_it_started() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let pid_file = std::env::temp_dir().join(format!("{}.pid", run_id("child", name)));
        // The shell's own child, not the shell, is watched: killing only the direct child
        // would leave it running.
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let exec = artel::builtins::exec::s("sh".to_owned(), Some(vec!["-c".to_owned(), script]));
        let result = exec.with(|s| s.time_limit(Duration::from_millis(500))).delay(&app).await.expect("sent");
        let error = task_error(result.get(WAIT).await.expect_err("killed"));
        assert_eq!(error.kind(), TaskErrorKind::TimedOut, "{name}");
        let pid = std::fs::read_to_string(&pid_file).expect("the shell wrote its child's pid");
        let _ = std::fs::remove_file(&pid_file);
        let stat = format!("/proc/{}/stat", pid.trim());
        let deadline = Instant::now() + Duration::from_secs(5);
        // Gone, or a zombie waiting to be reaped: either way no longer running.
        while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z ")) {
            assert!(Instant::now() < deadline, "{name}: grandchild {} still running", pid.trim());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_the_retry_count_are_visible_to_the_client() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let result = stepper::delay(&app, 5).await.expect("sent");
        until_state(&result, State::Progress, name).await;
        let info = result.info().await.expect("info").expect("meta");
        assert_eq!(info["total"], 5, "{name}: {info}");
        assert!(info["done"].as_u64().is_some_and(|d| (1..=5).contains(&d)), "{name}: {info}");
        assert_eq!(result.get(WAIT).await.expect("value"), 1, "{name}: ran once retried");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_go_pending_received_started_success() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let run = run_id("states", name);
        // The first call takes the rate limiter's token; the second waits RECEIVED.
        let first = counted::delay(&app, run.clone(), 0).await.expect("sent");
        first.get(WAIT).await.expect("first");
        let second = counted::delay(&app, run.clone(), 300).await.expect("sent");
        until_state(&second, State::Received, name).await;
        until_state(&second, State::Started, name).await;
        let worker = second.info().await.expect("info").expect("meta");
        assert_eq!(worker["pid"], std::process::id(), "{name}: {worker}");
        assert_eq!(second.get(WAIT).await.expect("value"), 2, "{name}");
        assert_eq!(second.state().await.expect("state"), State::Success, "{name}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_task_that_has_not_started_never_runs() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let run = run_id("revoked", name);
        let delayed = counted::s(run.clone(), 0).with(|s| s.countdown(Duration::from_millis(500)));
        let result = delayed.delay(&app).await.expect("sent");
        result.revoke(false).await.expect("revoke");
        assert_eq!(result.state().await.expect("state"), State::Revoked, "{name}: visible at once");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let stats = app.worker_stats().expect("worker");
        assert_eq!(stats.revoked.load(std::sync::atomic::Ordering::Relaxed), 1, "{name}: discarded when due");
        assert_eq!(common::attempts(&run), 0, "{name}: never ran");
        let error = task_error(result.get(WAIT).await.expect_err("revoked"));
        assert_eq!(error.kind(), TaskErrorKind::Revoked, "{name}");
        app.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_with_terminate_stops_a_running_task() {
    for (name, app, _cleanup) in common::apps(registry, config).await {
        let run = run_id("forever", name);
        let result = forever::delay(&app, run.clone()).await.expect("sent");
        until_state(&result, State::Started, name).await;
        app.revoke(result.id(), true).await.expect("revoke");
        let error = task_error(result.get(WAIT).await.expect_err("terminated"));
        assert_eq!((error.kind(), error.message()), (TaskErrorKind::Revoked, "terminated"), "{name}");
        assert_eq!(result.state().await.expect("state"), State::Revoked, "{name}");
        assert_eq!(common::attempts(&run), 1, "{name}");
        app.shutdown().await;
    }
}
