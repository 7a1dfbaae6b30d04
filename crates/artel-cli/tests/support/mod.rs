//! Shared by the process tests: worker processes and Redis key cleanup.
#![allow(dead_code, unreachable_pub)]

pub mod brokers;
pub mod failover;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Redis the tests use (`ARTEL_REDIS_URL`, else the local default).
pub fn redis_url() -> String {
    std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// Deletes a test's Redis keys (and its side-effect file) at the end.
pub struct RedisCleanup {
    /// The key prefix the test used.
    pub prefix: String,
    /// A file the test's tasks wrote.
    pub runs: String,
}

impl Drop for RedisCleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.runs);
        let script = format!(
            "redis-cli -u '{}' --scan --pattern '{}:*' | xargs -r redis-cli -u '{}' del",
            redis_url(),
            self.prefix,
            redis_url()
        );
        let _ = Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).status();
    }
}

/// A worker process, killed if the test ends without stopping it; what it logs goes to
/// a scratch file (removed with it) that a failing test shows the end of.
pub struct WorkerProcess(pub Child, Option<PathBuf>);

impl WorkerProcess {
    pub fn start(url: &str, args: &[&str]) -> Self {
        let log = std::env::temp_dir().join(format!("artel-test-worker-{}.log", uuid::Uuid::new_v4()));
        let stderr = std::fs::File::create(&log).map_or_else(|_| Stdio::null(), Stdio::from);
        let child = Command::new(env!("CARGO_BIN_EXE_artel"))
            .args(["--broker", url, "worker"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start a worker");
        Self(child, Some(log))
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// The last lines the worker logged, for a failing assertion's message.
    pub fn tail(&self) -> String {
        let text = self.1.as_ref().and_then(|log| std::fs::read_to_string(log).ok()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("the worker's last log lines:\n{}", lines[lines.len().saturating_sub(30)..].join("\n"))
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    pub fn wait(&mut self, patience: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "worker did not exit within {patience:?}; {}", self.tail());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A worker that is this test binary itself running its `worker_child` test (which
/// returns at once unless `env` names a broker), with `env` added to its environment.
pub fn self_worker(env: &[(&str, &std::ffi::OsStr)]) -> WorkerProcess {
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["worker_child", "--exact", "--quiet", "--test-threads=1"])
        .envs(env.iter().copied())
        .env("ARTEL_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start a worker");
    WorkerProcess::from(child)
}

impl From<Child> for WorkerProcess {
    fn from(child: Child) -> Self {
        Self(child, None)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if let Some(log) = &self.1 {
            let _ = std::fs::remove_file(log);
        }
    }
}

/// A task on a worker SIGKILLed mid-run completes on another worker once its lease
/// (about 1 s in `url`) lapses: run twice, finished by the survivor, nothing left.
/// How many of `states` succeeded.
pub fn succeeded(states: &[Option<artel::TaskResult>]) -> usize {
    states.iter().filter(|r| r.as_ref().is_some_and(|r| r.status == artel::State::Success)).count()
}

/// Publishes `tasks` calls of `sleep(seconds)` through `app`, starts a worker on `url`
/// with `args`, and waits until a quarter of them succeeded (before `deadline`): the
/// moment the failure tests break something. Returns the tasks' ids and the worker.
pub async fn a_quarter_done(
    app: &artel::App,
    url: &str,
    (tasks, seconds): (usize, f64),
    args: &[&str],
    deadline: Instant,
) -> (Vec<String>, WorkerProcess) {
    let mut ids = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let call = artel::Signature::new("sleep").with_args(vec![serde_json::json!(seconds)]);
        ids.push(app.send(call).await.expect("published"));
    }
    let worker = WorkerProcess::start(url, args);
    let started = Instant::now();
    loop {
        let done = succeeded(&app.backend().results().get_many(&ids).await.expect("read"));
        if done >= tasks / 4 {
            break;
        }
        // The worker's lines first: the end of a CI log shows the end of the message.
        let why = format!("the worker did not get going: {done} of {tasks} done in {:?}", started.elapsed());
        assert!(Instant::now() < deadline, "{}\n{why}", worker.tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (ids, worker)
}

/// `runs` is a scratch file the task appends to at each start.
pub async fn a_task_on_a_killed_worker_completes_on_another(connection: &artel::Connection, url: &str, runs: &str) {
    use artel::core::{Clock, Signature, State, SystemClock};
    use serde_json::{Value, json};
    let mut doomed = WorkerProcess::start(url, &["--enable", "exec", "-c", "1"]);
    let script = format!("echo run >> {runs}; sleep 1; echo $PPID");
    let message = Signature::new("exec")
        .with_args(vec![json!("sh"), json!(["-c", script])])
        .to_message(SystemClock.now(), "test");
    let id = message.headers.id.clone();
    connection.backend.broker().publish("celery", std::slice::from_ref(&message)).await.expect("publish");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(runs).exists() {
        assert!(Instant::now() < deadline, "the first worker never started the task");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    doomed.0.kill().expect("SIGKILL");
    doomed.0.wait().expect("reaped");
    let killed_at = Instant::now();
    let rescuer = WorkerProcess::start(url, &["--enable", "exec", "-c", "1"]);
    let result = connection.backend.results().wait(&id, Duration::from_secs(30)).await.expect("finished");
    assert_eq!(result.status, State::Success, "{result:?}");
    let pid: u32 =
        result.result.get("stdout").and_then(Value::as_str).and_then(|s| s.trim().parse().ok()).expect("pid");
    assert_eq!(pid, rescuer.0.id(), "the surviving worker finished it");
    assert!(killed_at.elapsed() >= Duration::from_millis(800), "not before the lease lapsed");
    let started = std::fs::read_to_string(runs).expect("runs").lines().count();
    assert_eq!(started, 2, "at least once: started on the killed worker, then once more");
    tokio::time::sleep(Duration::from_millis(200)).await; // the ack follows the stored result
    assert_eq!(connection.backend.broker().len("celery").await.expect("len"), 0, "nothing left");
}

/// Runs the `artel` binary against `url`: (exit code, stdout, stderr).
pub fn artel(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_artel")).args(["--broker", url]).args(args).output().expect("run artel");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Bad input ends in the dead letters with its reason; `dead retry` puts it back,
/// `queues` counts it, `purge` and `dead purge` remove it.
pub fn dead_letters_round_trip(url: &str) {
    let (code, unknown_id, _) = artel(url, &["call", "no.such.task"]);
    assert_eq!(code, 0);
    let (code, _, _) = artel(url, &["call", "echo", "--args", "[1, 2]"]);
    assert_eq!(code, 0);
    let (code, _, stderr) = artel(url, &["call", "echo", "--args", "{not json"]);
    assert_eq!(code, 2, "bad --args is a usage error");
    assert!(stderr.contains("--args is not valid JSON"), "{stderr}");

    let (code, _, _) = artel(url, &["worker", "--burst"]);
    assert_eq!(code, 0, "a burst worker exits once the queue is empty");
    let (_, dead, _) = artel(url, &["dead", "list"]);
    assert!(dead.contains("NotRegistered: no.such.task"), "{dead}");
    assert!(dead.contains("TypeError: echo(): takes 1 positional arguments but 2 were given"), "{dead}");
    let (code, shown, _) = artel(url, &["result", unknown_id.trim()]);
    assert_eq!(code, 1, "a failed task's result exits 1");
    assert!(shown.contains("FAILURE") && shown.contains("NotRegistered"), "{shown}");

    let (_, retried, _) = artel(url, &["dead", "retry"]);
    assert_eq!(retried.trim(), "requeued 2 dead messages");
    let (code, shown, _) = artel(url, &["result", unknown_id.trim()]);
    assert_eq!(code, 4, "PENDING again: the retried message has not run yet: {shown}");
    let (_, queues, _) = artel(url, &["queues"]);
    let celery = queues.lines().find(|l| l.starts_with("celery")).expect("the celery queue");
    assert_eq!(celery.split_whitespace().collect::<Vec<_>>(), ["celery", "2", "0", "0", "0"], "{queues}");
    let (_, purged, _) = artel(url, &["purge", "celery"]);
    assert_eq!(purged.trim(), "purged 2 messages from celery");
    let (_, deleted, _) = artel(url, &["dead", "purge"]);
    assert_eq!(deleted.trim(), "deleted 0 dead messages");
}

/// A task that fails for good is listed by `failed list` (with its worker, attempts and
/// error), shown by `result`, and `failed retry` runs it again from PENDING.
pub fn failed_tasks_round_trip(url: &str) {
    let (code, id, _) = artel(url, &["call", "exec", "--args", r#"["/no/such/program", ["--flag"]]"#]);
    assert_eq!(code, 0);
    let id = id.trim();
    let (code, _, stderr) = artel(url, &["worker", "--burst", "--enable", "exec", "-n", "failing@test"]);
    assert_eq!(code, 0, "{stderr}");

    let (code, listed, _) = artel(url, &["failed", "list", "--since", "1h"]);
    assert_eq!(code, 0);
    let row = listed.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("{id} listed: {listed}"));
    assert!(row.contains("exec") && row.contains("cannot run") && row.contains("/no/such/program"), "{row}");
    let (_, json, _) = artel(url, &["failed", "list", "--json"]);
    let failures: serde_json::Value = serde_json::from_str(&json).expect("--json is JSON");
    assert_eq!(failures[0]["task_id"], id, "{json}");
    assert_eq!(failures[0]["attempts"], 1, "{json}");
    assert_eq!(failures[0]["worker"], "failing@test", "{json}");
    let (_, other, _) = artel(url, &["failed", "list", "--task", "echo"]);
    assert_eq!(other.trim(), "no failed tasks");

    let (code, shown, _) = artel(url, &["result", id]);
    assert_eq!(code, 1, "{shown}");
    for part in ["FAILURE", "exec", "cannot run", "failing@test", "runtime"] {
        assert!(shown.contains(part), "{part} in {shown}");
    }

    let (code, out, _) = artel(url, &["failed", "retry", id]);
    assert_eq!((code, out.trim()), (0, "published 1 failed task again"));
    let (code, shown, _) = artel(url, &["result", id]);
    assert_eq!(code, 4, "PENDING until it runs again: {shown}");
    let (_, listed, _) = artel(url, &["failed", "list"]);
    assert_eq!(listed.trim(), "no failed tasks");
    artel(url, &["worker", "--burst", "--enable", "exec"]);
    let (code, out, _) = artel(url, &["failed", "retry", "--all"]);
    assert_eq!((code, out.trim()), (0, "published 1 failed task again"), "it failed again and was recorded again");
    artel(url, &["purge", "celery"]);
}
