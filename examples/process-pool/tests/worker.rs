//! `artel worker --pool processes` with real processes: the worker's children are the
//! worker binary again; a crash or a runaway loop takes down only its child.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use artel::core::{Clock, Signature, State, SystemClock, TaskResult};
use artel::{Connection, connect};

/// A worker process on a scratch database; killed and cleaned up at the end.
struct Worker {
    child: Child,
    db: PathBuf,
}

impl Worker {
    fn start(args: &[&str]) -> (Self, String) {
        Self::start_on("?poll_ms=10", args)
    }

    fn start_on(params: &str, args: &[&str]) -> (Self, String) {
        let db = std::env::temp_dir().join(format!("artel-process-worker-{}.db", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}{params}", db.display());
        let child = Command::new(env!("CARGO_BIN_EXE_process-worker"))
            .args(["--broker", &url, "worker"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the worker");
        (Self { child, db }, url)
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        artel::sqlite::remove_database(&self.db);
    }
}

async fn run(connection: &Connection, signature: Signature) -> TaskResult {
    let message = signature.to_message(SystemClock.now(), "test");
    connection.backend.broker().publish(message.queue(), std::slice::from_ref(&message)).await.expect("publish");
    connection.backend.results().wait(&message.headers.id, Duration::from_secs(30)).await.expect("a result")
}

fn pid_of(result: &TaskResult) -> u64 {
    assert_eq!(result.status, State::Success, "{result:?}");
    result.result.as_u64().expect("a pid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_task_fails_as_worker_lost_and_the_next_runs_on_a_fresh_child() {
    let (mut worker, url) = Worker::start(&["--pool", "processes", "-c", "1"]);
    let connection = connect(&url).await.expect("open");
    let first = pid_of(&run(&connection, Signature::new("whoami")).await);
    assert_ne!(first, u64::from(worker.child.id()), "tasks run in a child, not the worker");
    let crashed = run(&connection, Signature::new("crash")).await;
    assert_eq!(crashed.status, State::Failure, "{crashed:?}");
    let error = crashed.error().expect("an error");
    assert_eq!(error.exc_type(), "WorkerLostError", "{error}");
    assert!(error.message().contains("SIGABRT"), "{error}");
    let next = pid_of(&run(&connection, Signature::new("whoami")).await);
    assert_ne!(next, first, "a fresh child");
    assert!(worker.alive(), "the worker itself is unharmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_task_past_its_hard_limit_is_stopped_with_its_child() {
    let (mut worker, url) = Worker::start(&["--pool", "processes", "-c", "1"]);
    let connection = connect(&url).await.expect("open");
    let spinner = pid_of(&run(&connection, Signature::new("whoami")).await);
    let limited = Signature::new("spin").time_limit(Duration::from_millis(300));
    let result = run(&connection, limited).await;
    assert_eq!(result.status, State::Failure, "{result:?}");
    assert_eq!(result.error().expect("an error").exc_type(), "TimeLimitExceeded");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{spinner}")).exists() {
        assert!(std::time::Instant::now() < deadline, "the spinning child {spinner} still exists");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(pid_of(&run(&connection, Signature::new("whoami")).await), spinner);
    assert!(worker.alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_declared_reject_on_worker_lost_is_delivered_again_until_quarantined() {
    // No --pool processes: the task's own `process` option sends it to a child.
    let (mut worker, url) = Worker::start_on("?poll_ms=10&lease_ms=300", &["--max-deliveries", "2"]);
    let connection = connect(&url).await.expect("open");
    let runs = worker.db.with_extension("runs");
    let call = Signature::new("crash_again").with_args(vec![serde_json::json!(runs.display().to_string())]);
    let result = run(&connection, call).await;
    assert_eq!(result.status, State::Failure, "{result:?}");
    let error = result.error().expect("an error");
    assert_eq!(error.exc_type(), "WorkerLostError", "{error}");
    assert!(error.message().contains("delivered 2 times"), "quarantined after two deliveries: {error}");
    let ran = std::fs::read_to_string(&runs).expect("runs").lines().count();
    let _ = std::fs::remove_file(&runs);
    assert_eq!(ran, 2, "each delivery ran once, in a child");
    assert!(worker.alive());
}
