//! What running the worker in production relies on, checked with real worker processes:
//! stops that never run a task twice at once, `exec` off unless enabled, poison messages
//! quarantined.

mod support;

use std::time::{Duration, Instant};

use artel_broker_tests::ScratchDb;
use serde_json::json;

fn sqlite(db: &ScratchDb) -> String {
    format!("sqlite://{}?poll_ms=10", db.path().display())
}

fn wait_until(what: &str, patience: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {patience:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A scratch database holding one `exec` call whose run appends `start <worker pid>` to a
/// side-effect file, sleeps, then appends `end <worker pid>`; the file goes at the end.
struct Sleeper {
    _db: ScratchDb,
    url: String,
    runs: String,
    id: String,
}

impl Sleeper {
    fn queued(purpose: &str, seconds: u32) -> Self {
        let db = ScratchDb::new(purpose);
        let (url, runs) = (sqlite(&db), format!("{}.runs", db.path().display()));
        let script = format!("echo start $PPID >> {runs}; sleep {seconds}; echo end $PPID >> {runs}");
        let args = serde_json::to_string(&json!(["sh", ["-c", script]])).expect("json");
        let (code, id, stderr) = support::artel(&url, &["call", "exec", "--args", &args]);
        assert_eq!(code, 0, "{stderr}");
        Self { _db: db, url, runs, id: id.trim().to_owned() }
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.runs).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// Starts a worker that may run `exec`, and waits until it started the call.
    fn started_by(&self, args: &[&str]) -> support::WorkerProcess {
        let worker = support::WorkerProcess::start(&self.url, &[&["--enable", "exec", "-c", "1"], args].concat());
        wait_until("the worker starts the task", Duration::from_secs(10), || !self.lines().is_empty());
        worker
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.runs);
    }
}

#[test]
fn a_second_signal_stops_the_run_before_its_message_goes_back_and_the_worker_exits_within_2s() {
    let call = Sleeper::queued("cold-stop", 3);
    let mut first = call.started_by(&["--grace", "30"]);
    first.signal("-TERM");
    std::thread::sleep(Duration::from_millis(200));
    first.signal("-TERM");
    let stopped = Instant::now();
    first.wait(Duration::from_secs(5));
    assert!(stopped.elapsed() < Duration::from_secs(2), "exited {:?} after the second signal", stopped.elapsed());

    let second = support::WorkerProcess::start(&call.url, &["--enable", "exec", "-c", "1"]);
    let (code, shown, _) = support::artel(&call.url, &["result", "--wait", "--timeout", "20", &call.id]);
    assert_eq!(code, 0, "{shown}");
    let (a, b) = (first.pid(), second.pid());
    assert_eq!(
        call.lines(),
        [format!("start {a}"), format!("start {b}"), format!("end {b}")],
        "the first run was killed before the second began"
    );
}

#[test]
fn the_end_of_the_grace_period_stops_the_run_as_a_second_signal_does() {
    let call = Sleeper::queued("grace-stop", 4);
    let mut worker = call.started_by(&["--grace", "1"]);
    worker.signal("-TERM");
    let stopped = Instant::now();
    worker.wait(Duration::from_secs(5));
    assert!(stopped.elapsed() < Duration::from_secs(3), "grace 1 s, then stopped: took {:?}", stopped.elapsed());
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(call.lines().len(), 1, "the stopped run never reached its end: {:?}", call.lines());
    let (_, queues, _) = support::artel(&call.url, &["queues"]);
    let celery = queues.lines().find(|l| l.starts_with("celery")).expect("the celery queue");
    assert_eq!(celery.split_whitespace().nth(1), Some("1"), "the message is ready again: {queues}");
}

#[test]
fn exec_and_http_are_off_unless_enabled() {
    let db = ScratchDb::new("exec-off");
    let url = sqlite(&db);
    let (code, id, _) = support::artel(&url, &["call", "exec", "--args", r#"["true"]"#]);
    assert_eq!(code, 0);
    let (code, _, _) = support::artel(&url, &["worker", "--burst"]);
    assert_eq!(code, 0);
    let (_, dead, _) = support::artel(&url, &["dead", "list"]);
    assert!(dead.contains("NotRegistered: exec"), "{dead}");

    let (code, _, stderr) = support::artel(&url, &["worker", "--burst", "--enable", "shell"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--enable takes exec, http"), "{stderr}");

    let (code, _, _) = support::artel(&url, &["dead", "retry"]);
    assert_eq!(code, 0);
    let (code, _, stderr) = support::artel(&url, &["worker", "--burst", "--enable", "exec"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, out, stderr) = support::artel(&url, &["result", id.trim()]);
    assert_eq!(code, 0, "ran once enabled: {out} {stderr}");
}

/// A task that kills its own worker (as a segfault or the OOM killer would) is
/// dead-lettered after `--max-deliveries` deaths, its caller sees WorkerLostError, and the
/// next good task runs.
fn a_poison_message_is_quarantined_after_max_deliveries(url: &str, dead_listed: bool) {
    let kill_my_worker = serde_json::to_string(&json!(["sh", ["-c", "kill -9 $PPID"]])).expect("json");
    let (code, poison, _) = support::artel(url, &["call", "exec", "--args", &kill_my_worker]);
    assert_eq!(code, 0);
    let worker = ["--enable", "exec", "-c", "1", "--prefetch", "1", "--max-deliveries", "2"];
    for death in 1..=2 {
        let mut doomed = support::WorkerProcess::start(url, &worker);
        let status = doomed.wait(Duration::from_secs(20));
        assert_eq!(status.code(), None, "death {death}: killed by the task, not an exit: {status}");
    }
    let survivor = support::WorkerProcess::start(url, &worker);
    let (code, out, _) = support::artel(url, &["call", "echo", "--args", r#"["after"]"#, "--wait", "--timeout", "20"]);
    assert_eq!((code, out.trim()), (0, r#""after""#), "the next good task runs");
    let (code, shown, _) = support::artel(url, &["result", "--wait", "--timeout", "20", poison.trim()]);
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("WorkerLostError"), "{shown}");
    assert!(shown.contains("delivered 2 times without finishing (the worker died each time"), "{shown}");
    if dead_listed {
        let (_, dead, _) = support::artel(url, &["dead", "list"]);
        assert!(dead.contains("delivered 2 times without finishing (the worker died each time"), "{dead}");
    }
    drop(survivor);
}

#[test]
fn a_poison_message_is_quarantined_on_sqlite() {
    let db = ScratchDb::new("poison");
    a_poison_message_is_quarantined_after_max_deliveries(
        &format!("sqlite://{}?poll_ms=10&lease_ms=300", db.path().display()),
        true,
    );
}

#[test]
fn a_poison_message_is_quarantined_on_redis() {
    let prefix = format!("artel-test-poison-{}", uuid::Uuid::new_v4());
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: String::new() };
    let url = format!("{}?prefix={prefix}&poll_ms=10&lease_ms=300", support::redis_url());
    a_poison_message_is_quarantined_after_max_deliveries(&url, true);
}

/// A RabbitMQ vhost of the test's own, deleted at the end with everything in it.
struct Vhost(String);

impl Vhost {
    fn create() -> Option<Self> {
        let name = format!("artel-test-{}", uuid::Uuid::new_v4());
        let ctl = |args: &[&str]| {
            std::process::Command::new("rabbitmqctl")
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let made = ctl(&["add_vhost", &name]) && ctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
        if made {
            return Some(Self(name));
        }
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "rabbitmqctl could not add a vhost");
        eprintln!("skipped: rabbitmqctl could not add a vhost");
        None
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.0])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn a_poison_message_is_quarantined_on_rabbitmq() {
    let Some(vhost) = Vhost::create() else { return };
    let prefix = format!("artel-test-poison-{}", uuid::Uuid::new_v4());
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: String::new() };
    // Results (and delivery counts) in Redis under the test's prefix, kombu-style (`P:...`).
    let url =
        format!("amqp://guest:guest@127.0.0.1:5672/{}?results={}&prefix={prefix}:", vhost.0, support::redis_url());
    a_poison_message_is_quarantined_after_max_deliveries(&url, false);
}

#[test]
fn the_worker_logs_each_outcome_and_never_a_password() {
    let prefix = format!("artel-test-logs-{}", uuid::Uuid::new_v4());
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: String::new() };
    // Redis's default user takes any password when it has none: the URL carries one.
    let url = support::redis_url().replacen("redis://", "redis://default:s3cret-pw@", 1);
    let url = format!("{url}?prefix={prefix}&poll_ms=10");
    let (code, id, stderr) = support::artel(&url, &["call", "echo", "--args", r#"["logged"]"#]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = support::artel(&url, &["worker", "--burst", "--log-format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "the password is never shown: {stderr}");
    let events: Vec<serde_json::Value> =
        stderr.lines().map(|l| serde_json::from_str(l).expect("every line is JSON")).collect();
    let started =
        events.iter().find(|e| e["fields"]["message"].as_str().is_some_and(|m| m.starts_with("worker started")));
    assert!(
        started.is_some_and(|e| e["fields"]["broker"].as_str().is_some_and(|b| b.contains("default:***@"))),
        "{stderr}"
    );
    let done = events.iter().find(|e| e["fields"]["message"] == "succeeded").expect("a succeeded line");
    assert_eq!((&done["fields"]["task"], done["fields"]["id"].as_str()), (&json!("echo"), Some(id.trim())));

    support::artel(&url, &["call", "echo", "--args", r#"["quiet"]"#]);
    let (code, _, stderr) = support::artel(&url, &["worker", "--burst", "--log-level", "warn"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("succeeded"), "warn hides outcomes that went well: {stderr}");
}

#[test]
fn a_wrong_redis_password_is_named_as_such_once_and_hidden() {
    let user = format!("artel-test-{}", uuid::Uuid::new_v4());
    let acl = |args: &[&str]| {
        let status = std::process::Command::new("redis-cli")
            .args(["-u", &support::redis_url(), "ACL"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("redis-cli");
        assert!(status.success(), "ACL {args:?}");
    };
    acl(&["SETUSER", &user, "on", ">right-pw", "~*", "&*", "+@all"]);
    let url = support::redis_url().replacen("redis://", &format!("redis://{user}:wrong-pw@"), 1);
    let (code, _, stderr) = support::artel(&url, &["queues"]);
    acl(&["DELUSER", &user]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("check the password in the URL"), "{stderr}");
    assert!(!stderr.contains("is redis-server running"), "the server answered: {stderr}");
    assert!(!stderr.contains("wrong-pw"), "{stderr}");
    assert_eq!(stderr.matches("Password authentication failed").count(), 1, "the cause once: {stderr}");
}
