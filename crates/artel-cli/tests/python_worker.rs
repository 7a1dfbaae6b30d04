//! `artel worker --python MODULE:APP` on the native brokers, where the Celery app is only
//! the task code (its broker settings are not used): `artel call` runs its Python tasks,
//! `self.retry()` is a durable artel retry, a datetime result reads back in Celery's JSON,
//! an exception's type is stored, a task declared `acks_late` and `reject_on_worker_lost`
//! whose child died is delivered again, and bad arguments land in the dead letters. Needs a Python with Celery (`ARTEL_PYTHON`; scripts/test makes one).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{WorkerProcess, artel};

/// The Celery app: plain tasks, nothing artel-specific.
const TASKS: &str = r#"
import datetime
import os

from celery import Celery

app = Celery("native_tasks")


@app.task(name="native.add")
def add(x, y):
    return x + y


@app.task(name="native.flaky", bind=True, max_retries=3)
def flaky(self):
    if self.request.retries < 2:
        raise self.retry(countdown=0.1)
    return self.request.retries


@app.task(name="native.later", bind=True)
def later(self):
    if self.request.retries == 0:
        at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
        raise self.retry(eta=at)
    return self.request.retries


@app.task(name="native.when")
def when():
    return datetime.datetime(2026, 1, 2, 3, 4, 5)


@app.task(name="native.boom")
def boom():
    raise KeyError("missing")


@app.task(name="native.crash_once", acks_late=True, reject_on_worker_lost=True)
def crash_once(marker):
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.abort()
    return "delivered again"
"#;

/// Short leases: a message whose child died comes back within a second.
const QUERY: &str = "poll_ms=20&lease_ms=500";

#[test]
fn a_sqlite_worker_runs_python_celery_tasks() {
    let broker = support::brokers::sqlite(QUERY);
    runs_python_tasks(&broker.url);
}

#[test]
fn a_redis_worker_runs_python_celery_tasks() {
    let Some(broker) = support::brokers::redis(QUERY) else { return };
    runs_python_tasks(&broker.url);
}

#[test]
fn a_postgres_worker_runs_python_celery_tasks() {
    let Some(broker) = support::brokers::postgres(QUERY) else { return };
    runs_python_tasks(&broker.url);
}

/// A Python with Celery, or `None` (skipped) where there is none and none is required.
fn python() -> Option<PathBuf> {
    let python = std::env::var_os("ARTEL_PYTHON").map(PathBuf::from);
    if python.is_none() {
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "ARTEL_PYTHON is required");
        eprintln!("skipped: set ARTEL_PYTHON to a Python with Celery installed");
    }
    python
}

/// A directory holding the app's module, removed at the end.
struct AppDir(PathBuf);

impl AppDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("artel-python-app-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        std::fs::write(dir.join("native_tasks.py"), TASKS).expect("write the app");
        Self(dir)
    }
}

impl Drop for AppDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start_worker(url: &str, python: &Path, dir: &AppDir) -> WorkerProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_artel"))
        .current_dir(&dir.0)
        .args(["--broker", url, "worker", "-c", "2", "--python", "native_tasks:app", "--python-exe"])
        .arg(python)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the worker");
    WorkerProcess::from(child)
}

fn runs_python_tasks(url: &str) {
    let Some(python) = python() else { return };
    let dir = AppDir::new();
    let mut worker = start_worker(url, &python, &dir);
    let call = |task: &str, args: &str| {
        let (code, out, err) = artel(url, &["call", task, "--args", args, "--wait", "--timeout", "30"]);
        (code, out.trim().to_owned(), err)
    };
    assert_eq!(call("native.add", "[2, 3]").1, "5");
    assert_eq!(call("native.flaky", "[]").1, "2", "retried twice by the worker");
    let asked = std::time::Instant::now();
    assert_eq!(call("native.later", "[]").1, "1");
    assert!(asked.elapsed() >= std::time::Duration::from_millis(900), "self.retry(eta=...) waits for the eta");
    let (_, when, _) = call("native.when", "[]");
    assert_eq!(when, r#"{"__type__":"datetime","__value__":"2026-01-02T03:04:05"}"#, "Celery's JSON for a datetime");
    let (code, out, err) = call("native.boom", "[]");
    assert_ne!(code, 0, "a failure exits non-zero: {out}");
    assert!(err.contains("KeyError") || out.contains("KeyError"), "{out}{err}");
    let marker = dir.0.join("crashed").display().to_string();
    let crash_once = call("native.crash_once", &serde_json::json!([marker]).to_string());
    assert_eq!(crash_once.1, r#""delivered again""#, "acks_late + reject_on_worker_lost: run again: {crash_once:?}");
    let (code, id, _) = artel(url, &["call", "native.add", "--args", "[1]"]);
    assert_eq!(code, 0);
    let (_, shown, _) = artel(url, &["result", "--wait", "--timeout", "30", id.trim()]);
    assert!(shown.contains("TypeError") && shown.contains("missing 1 required positional argument"), "{shown}");
    // The result is stored before the message is dead-lettered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !artel(url, &["dead", "list", "--json"]).1.contains(id.trim()) {
        assert!(std::time::Instant::now() < deadline, "bad arguments are dead-lettered");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    worker.signal("-TERM");
    assert!(worker.wait(std::time::Duration::from_secs(20)).success(), "a warm stop");
}
