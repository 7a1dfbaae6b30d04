//! Producers and workers in separate processes on one SQLite file.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use artel::core::{Clock, Signature, State, SystemClock};
use artel::{Connection, connect};
use serde_json::{Value, json};

/// A scratch database (and its WAL files), removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("artel-processes-{}.db", uuid::Uuid::new_v4())))
    }

    fn url(&self, params: &str) -> String {
        format!("sqlite://{}{params}", self.0.display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        artel::sqlite::remove_database(&self.0);
        let _ = std::fs::remove_file(format!("{}.runs", self.0.display()));
    }
}

/// A task that records each start in `runs`, sleeps, and returns its worker's pid.
fn shell_task(runs: &str, seconds: f64) -> Signature {
    let script = format!("echo run >> {runs}; sleep {seconds}; echo $PPID");
    Signature::new("exec").with_args(vec![json!("sh"), json!(["-c", script])])
}

async fn publish(connection: &Connection, signature: Signature) -> String {
    let message = signature.to_message(SystemClock.now(), "test");
    connection.backend.broker().publish(message.queue(), std::slice::from_ref(&message)).await.expect("publish");
    message.headers.id
}

async fn worker_pid_of(connection: &Connection, id: &str) -> u32 {
    let result = connection.backend.results().wait(id, Duration::from_secs(30)).await.expect("finished");
    assert_eq!(result.status, State::Success, "{result:?}");
    let stdout = result.result.get("stdout").and_then(Value::as_str).expect("exec output");
    stdout.trim().parse().expect("a pid")
}

/// Waits (up to 10 s) for the acks that follow stored results, then counts.
async fn settled(connection: &Connection) -> (u64, u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts = held_and_waiting(connection).await;
        if counts.1 == 0 || Instant::now() > deadline {
            return counts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn held_and_waiting(connection: &Connection) -> (u64, u64, u64) {
    let counts = connection.backend.inspect().expect("sqlite counts queues").queue_counts().await.expect("counts");
    counts.iter().fold((0, 0, 0), |(r, l, d), c| (r + c.ready + c.delayed, l + c.leased, d + c.dead))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_and_a_producer_share_one_file_and_every_task_runs_once() {
    let db = Scratch::new();
    let url = db.url("?poll_ms=10");
    let connection = connect(&url).await.expect("open");
    let runs = format!("{}.runs", db.0.display());
    let first = support::WorkerProcess::start(&url, &["--enable", "exec", "-c", "4", "--prefetch", "1"]);
    let second = support::WorkerProcess::start(&url, &["--enable", "exec", "-c", "4", "--prefetch", "1"]);
    let mut ids = Vec::new();
    for _ in 0..24 {
        ids.push(publish(&connection, shell_task(&runs, 0.1)).await);
    }
    let mut pids = BTreeSet::new();
    for id in &ids {
        pids.insert(worker_pid_of(&connection, id).await);
    }
    assert_eq!(pids, BTreeSet::from([first.pid(), second.pid()]), "both workers took tasks");
    let started = std::fs::read_to_string(&runs).expect("runs file").lines().count();
    assert_eq!(started, 24, "no task ran twice while both workers lived");
    assert_eq!(settled(&connection).await, (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_on_a_killed_worker_completes_on_another_after_its_lease() {
    let db = Scratch::new();
    let url = db.url("?poll_ms=10&lease_ms=1000");
    let connection = connect(&url).await.expect("open");
    let runs = format!("{}.runs", db.0.display());
    let mut doomed = support::WorkerProcess::start(&url, &["--enable", "exec", "-c", "1"]);
    let id = publish(&connection, shell_task(&runs, 1.0)).await;
    // Killed once its run has begun (the task wrote its line), not merely once it holds
    // the message: the run must be seen to happen twice.
    while held_and_waiting(&connection).await.1 == 0
        || std::fs::read_to_string(&runs).map_or(0, |text| text.lines().count()) == 0
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    doomed.signal("-KILL");
    doomed.wait(Duration::from_secs(5));
    let killed_at = Instant::now();
    let rescuer = support::WorkerProcess::start(&url, &["--enable", "exec", "-c", "1"]);
    assert_eq!(worker_pid_of(&connection, &id).await, rescuer.pid(), "the surviving worker finished it");
    assert!(killed_at.elapsed() >= Duration::from_millis(900), "not before the lease lapsed");
    let started = std::fs::read_to_string(&runs).expect("runs file").lines().count();
    assert_eq!(started, 2, "at least once: started on the killed worker, then once more");
    assert_eq!(settled(&connection).await, (0, 0, 0), "nothing lost, nothing left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn countdown_tasks_run_no_earlier_than_due() {
    let db = Scratch::new();
    let url = db.url("?poll_ms=10");
    let connection = connect(&url).await.expect("open");
    let _worker = support::WorkerProcess::start(&url, &["--enable", "exec", "-c", "2"]);
    let sent = SystemClock.now();
    let id = publish(&connection, Signature::new("noop").countdown(Duration::from_millis(1500))).await;
    let result = connection.backend.results().wait(&id, Duration::from_secs(30)).await.expect("finished");
    let ran_after = result.date_done.expect("done") - sent;
    assert!(ran_after >= chrono_ms(1500), "finished {ran_after} after sending");
}

fn chrono_ms(ms: i64) -> chrono::Duration {
    chrono::Duration::milliseconds(ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_running_tasks_and_hands_prefetched_ones_back() {
    let db = Scratch::new();
    let url = db.url("?poll_ms=10");
    let connection = connect(&url).await.expect("open");
    let runs = format!("{}.runs", db.0.display());
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(publish(&connection, shell_task(&runs, 0.8)).await);
    }
    let mut worker = support::WorkerProcess::start(&url, &["--enable", "exec", "-c", "1", "--prefetch", "3"]);
    while !std::path::Path::new(&runs).exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.signal("-TERM");
    let status = worker.wait(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let finished: Vec<bool> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(
                connection.backend.results().get(id).await.expect("get").is_some_and(|r| r.status == State::Success),
            );
        }
        v
    };
    assert_eq!(finished.iter().filter(|f| **f).count(), 1, "the running task finished: {finished:?}");
    assert_eq!(held_and_waiting(&connection).await, (2, 0, 0), "the two prefetched ones are ready again");
}

#[test]
fn bad_input_is_dead_lettered_with_its_reason_and_can_be_retried_or_purged() {
    let db = Scratch::new();
    support::dead_letters_round_trip(&db.url(""));
}

#[test]
fn failed_tasks_are_listed_and_run_again() {
    let db = Scratch::new();
    support::failed_tasks_round_trip(&db.url("?poll_ms=10"));
}

#[test]
fn the_cli_revokes_a_delayed_task_and_stops_a_running_one() {
    let db = Scratch::new();
    let url = db.url("?poll_ms=10");
    let _worker = support::WorkerProcess::start(
        &url,
        &["--enable", "exec", "-c", "2", "--track-started", "--revoke-poll-ms", "50"],
    );
    let runs = format!("{}.runs", db.0.display());
    let script = format!("echo run >> {runs}");
    let args = serde_json::to_string(&json!(["sh", ["-c", script]])).expect("json");
    let (code, delayed, _) = support::artel(&url, &["call", "exec", "--args", &args, "--countdown", "1"]);
    assert_eq!(code, 0);
    let (code, long, _) = support::artel(&url, &["call", "sleep", "--args", "[60]"]);
    assert_eq!(code, 0);
    let (delayed, long) = (delayed.trim(), long.trim());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !support::artel(&url, &["result", long]).1.contains("STARTED") {
        assert!(Instant::now() < deadline, "the long task never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, out, _) = support::artel(&url, &["revoke", "--terminate", delayed, long]);
    assert_eq!((code, out.lines().count()), (0, 2), "{out}");
    for id in [delayed, long] {
        let (code, shown, _) = support::artel(&url, &["result", "--wait", "--timeout", "10", id]);
        assert_eq!(code, 1, "a revoked task's result is an error: {shown}");
        assert!(shown.contains("REVOKED"), "{shown}");
    }
    std::thread::sleep(Duration::from_millis(1200));
    assert!(std::fs::read_to_string(&runs).is_err(), "the delayed task never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pool_processes_tasks_run_in_children_with_the_built_ins_the_worker_enabled() {
    let db = Scratch::new();
    let url = db.url("?poll_ms=10");
    let connection = connect(&url).await.expect("open");
    let runs = format!("{}.runs", db.0.display());
    let worker = support::WorkerProcess::start(&url, &["--pool", "processes", "-c", "2", "--enable", "exec"]);
    let id = publish(&connection, shell_task(&runs, 0.0)).await;
    let ran_in = worker_pid_of(&connection, &id).await;
    assert_ne!(ran_in, worker.pid(), "exec ran in a child process, not the worker");
    let parent = std::fs::read_to_string(format!("/proc/{ran_in}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().and_then(|rest| rest.split_whitespace().nth(1)?.parse::<u32>().ok()));
    assert_eq!(parent, Some(worker.pid()), "a child of the worker");
}
