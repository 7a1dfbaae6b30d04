//! artel and Python Celery 5 on one broker — Redis (`celery+redis://`) or RabbitMQ
//! (`amqp://`, results in Redis) — each test under its own key prefix (and, on RabbitMQ,
//! its own queues): Python calls artel tasks, artel calls Python tasks, and chains,
//! groups and chords mix the two. Every claim is checked by reading the value.
//!
//! Needs `ARTEL_PYTHON`, a Python with `celery[redis]` (scripts/test makes
//! `.venv-interop`); without it the tests are skipped, unless `ARTEL_REQUIRE_SERVICES=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use artel::core::Signature;
use artel::{App, chain, connect};
use serde_json::{Value, json};

fn redis_url() -> String {
    std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

fn amqp_url() -> String {
    std::env::var("ARTEL_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A local port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// `rabbitmqctl ARGS` on the local RabbitMQ (scripts/test starts one).
fn rabbitmqctl(args: &[&str]) {
    let out =
        Command::new("rabbitmqctl").args(args).output().expect("rabbitmqctl (the RabbitMQ tests make a vhost each)");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The RabbitMQ server of `amqp_url()` with virtual host `vhost` instead of its own.
fn amqp_url_on(vhost: &str) -> String {
    let url = amqp_url();
    let (server, _) = url.rsplit_once('/').filter(|(server, _)| server.contains('@')).unwrap_or((&url, ""));
    format!("{}/{vhost}", server.trim_end_matches('/'))
}

/// Which broker a world runs on.
#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Redis,
    RabbitMq,
}

/// One test's world: a key prefix (and, on RabbitMQ, a virtual host of its own, so no
/// other test's workers, events or remote control reach it) shared by both sides,
/// removed at the end.
struct World {
    transport: Transport,
    prefix: String,
    rs: String,
    py: String,
    python: PathBuf,
    children: Vec<Child>,
}

impl World {
    fn new() -> Option<Self> {
        Self::on(Transport::Redis)
    }

    fn on(transport: Transport) -> Option<Self> {
        let Some(python) = std::env::var_os("ARTEL_PYTHON").map(PathBuf::from) else {
            assert!(
                std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "ARTEL_PYTHON (a Python with celery[redis]) is required; scripts/test sets it"
            );
            eprintln!("skipped: set ARTEL_PYTHON to a Python with celery[redis] installed");
            return None;
        };
        let unique = uuid::Uuid::new_v4().to_string();
        let prefix = format!("artel-interop-{unique}:");
        if transport == Transport::RabbitMq {
            let vhost = prefix.trim_end_matches(':');
            rabbitmqctl(&["add_vhost", vhost]);
            let user = amqp_url()
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once(':'))
                .map(|(user, _)| user.to_owned());
            rabbitmqctl(&["set_permissions", "-p", vhost, user.as_deref().unwrap_or("guest"), ".*", ".*", ".*"]);
        }
        Some(Self { transport, prefix, rs: "rs".to_owned(), py: "py".to_owned(), python, children: Vec::new() })
    }

    /// This world's RabbitMQ virtual host.
    fn vhost(&self) -> &str {
        self.prefix.trim_end_matches(':')
    }

    fn url(&self) -> String {
        match self.transport {
            Transport::Redis => format!("celery+{}?prefix={}&poll_ms=10", redis_url(), self.prefix),
            Transport::RabbitMq => {
                format!("{}?results={}&prefix={}", amqp_url_on(self.vhost()), redis_url(), self.prefix)
            }
        }
    }

    /// The broker URL as Python (kombu) names it.
    fn python_broker(&self) -> String {
        match self.transport {
            Transport::Redis => redis_url(),
            Transport::RabbitMq => amqp_url_on(self.vhost()),
        }
    }

    /// The Python interpreter, where python/app.py finds this world.
    fn python(&self) -> Command {
        self.in_python_dir(&self.python)
    }

    /// `program` run from python/ with this world's settings, as python/app.py reads them.
    fn in_python_dir(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(python_dir())
            .env("ARTEL_TEST_PREFIX", &self.prefix)
            .env("ARTEL_REDIS_URL", redis_url())
            .env("ARTEL_TEST_BROKER", self.python_broker())
            .env("ARTEL_RS_QUEUE", &self.rs)
            .env("ARTEL_PY_QUEUE", &self.py);
        command
    }

    /// The artel worker's node name in this world.
    fn node(&self) -> String {
        format!("rs-{}@test", self.prefix.trim_end_matches(':'))
    }

    fn start_artel_worker(&mut self) {
        self.start_artel_worker_with(&["-E", "-c", "8"]);
    }

    fn start_artel_worker_with(&mut self, args: &[&str]) {
        let node = self.node();
        let child = Command::new(env!("CARGO_BIN_EXE_celery-interop"))
            .args(["--broker", &self.url(), "worker", "-Q", &self.rs, "-n", &node])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the artel worker");
        self.children.push(child);
    }

    fn start_python_worker(&mut self) {
        self.start_python_worker_with(&["--without-heartbeat"]);
    }

    /// The Python worker's node name in this world.
    fn py_node(&self) -> String {
        format!("py-{}@test", self.prefix)
    }

    fn start_python_worker_with(&mut self, args: &[&str]) {
        let node = self.py_node();
        let child = self
            .python()
            .args(["-m", "celery", "-A", "app", "worker", "-Q", &self.py, "-P", "threads", "-c", "4", "-l", "warning"])
            .args(["--without-mingle", "--without-gossip", "-n", &node])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Python worker");
        self.children.push(child);
    }

    /// Starts Flower on this world's broker with its API open; its port.
    fn start_flower(&mut self) -> u16 {
        let port = free_port();
        let flower = self
            .python()
            .args(["-m", "celery", "-A", "app", "flower", &format!("--port={port}"), "--address=127.0.0.1"])
            .env("FLOWER_UNAUTHENTICATED_API", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Flower");
        self.children.push(flower);
        port
    }

    /// A path of this world's own in the temporary directory, removed with the world.
    fn scratch(&self, name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("{}-{name}", self.vhost()))
    }

    /// Runs a scenario of python/client.py and returns what it printed.
    fn client(&self, scenario: &str) -> Value {
        self.client_with(scenario, &[])
    }

    fn client_with(&self, scenario: &str, args: &[&str]) -> Value {
        let out = self.python().args(["client.py", scenario]).args(args).output().expect("run the Python client");
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{scenario} failed:\n{stdout}\n{stderr}");
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{scenario} printed {stdout:?}: {e}"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.transport == Transport::RabbitMq {
            let _ = Command::new("rabbitmqctl").args(["delete_vhost", self.vhost()]).stdout(Stdio::null()).status();
        }
        let own = format!("{}-", self.vhost());
        for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(&own) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let script = format!(
            "redis-cli -u '{url}' --scan --pattern '{p}*' | xargs -r -d '\\n' redis-cli -u '{url}' del",
            url = redis_url(),
            p = self.prefix
        );
        let _ = Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).status();
    }
}

#[test]
fn python_calls_artel_tasks_and_reads_values_errors_and_retries() {
    let Some(mut world) = World::new() else { return };
    world.start_artel_worker();
    assert_eq!(world.client("call_add"), json!(5));
    assert_eq!(world.client("call_fail"), json!({"type": "ValueError", "args": ["bad input"]}));
    assert_eq!(world.client("call_flaky"), json!({"value": 2, "state": "SUCCESS"}), "retried twice, then done");
    assert_eq!(world.client("call_countdown"), json!({"value": 2, "waited_a_second": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artel_calls_python_tasks_and_runs_a_mixed_chain() {
    artel_calls_python_tasks_and_runs_a_mixed_chain_on(Transport::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_rabbitmq_artel_calls_python_tasks_and_runs_a_mixed_chain() {
    artel_calls_python_tasks_and_runs_a_mixed_chain_on(Transport::RabbitMq).await;
}

#[test]
fn on_rabbitmq_python_calls_artel_tasks_and_mixes_canvas() {
    let Some(mut world) = World::on(Transport::RabbitMq) else { return };
    world.start_artel_worker();
    assert_eq!(world.client("call_add"), json!(5));
    assert_eq!(world.client("call_fail"), json!({"type": "ValueError", "args": ["bad input"]}));
    assert_eq!(world.client("call_flaky"), json!({"value": 2, "state": "SUCCESS"}), "retried twice, then done");
    assert_eq!(world.client("call_countdown"), json!({"value": 2, "waited_a_second": true}));
    world.start_python_worker();
    assert_eq!(world.client("mixed_chain"), json!(51));
    assert_eq!(world.client("mixed_group"), json!([0, 2, 20, 6, 40, 10]));
    assert_eq!(world.client("mixed_chord"), json!(50), "members on both, body on Python");
}

async fn artel_calls_python_tasks_and_runs_a_mixed_chain_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    world.start_python_worker();
    let connection = connect(&world.url()).await.expect("connect");
    let app = App::new(connection.backend);
    let (rs, py) = (world.rs.clone(), world.py.clone());
    let product = app.send_task(Signature::new("py.mul").with_args(vec![json!(6), json!(7)]).queue(&py)).await;
    assert_eq!(product.expect("sent").get(Duration::from_secs(30)).await.expect("value"), json!(42));

    world.start_artel_worker();
    let add = |args: Vec<Value>| Signature::new("app.add").with_args(args).queue(&rs);
    let mul = Signature::new("py.mul").with_args(vec![json!(10)]).queue(&py);
    let steps = chain([add(vec![json!(2), json!(3)]), mul, add(vec![json!(1)])]);
    let result = app.send_task(steps).await.expect("sent");
    assert_eq!(result.get(Duration::from_secs(30)).await.expect("value"), json!(51), "(2+3)*10+1 across both");

    // artel's revoke reaches the Python worker: had it run the task, its SUCCESS would
    // have replaced the REVOKED the client stored (Celery only keeps SUCCESS).
    let countdown = Duration::from_millis(1500);
    let later = Signature::new("py.mul").with_args(vec![json!(2), json!(2)]).queue(&py).countdown(countdown);
    let later = app.send_task(later).await.expect("sent");
    app.revoke(later.id(), false).await.expect("revoke");
    tokio::time::sleep(countdown + Duration::from_secs(1)).await;
    assert_eq!(later.state().await.expect("state"), artel::State::Revoked, "the Python worker discarded it");
}

#[test]
fn python_canvas_mixes_python_and_artel_workers() {
    let Some(mut world) = World::new() else { return };
    world.start_artel_worker();
    world.start_python_worker();
    assert_eq!(world.client("mixed_chain"), json!(51));
    assert_eq!(world.client("mixed_group"), json!([0, 2, 20, 6, 40, 10]));
    assert_eq!(world.client("mixed_chord"), json!(50), "members on both, body on Python");
    assert_eq!(world.client("chord_with_rust_body"), json!(20), "members on Python, body on artel");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_group_is_restored_across_languages() {
    let Some(mut world) = World::new() else { return };
    world.start_artel_worker();
    let connection = connect(&world.url()).await.expect("connect");
    let app = App::new(connection.backend);
    let members = (0..3).map(|i| Signature::new("app.add").with_args(vec![json!(i), json!(i)]).queue(&world.rs));
    let group = app.send_group(artel::group(members)).await.expect("sent");
    group.save().await.expect("save");
    assert_eq!(world.client_with("restore_group", &[group.id()]), json!([0, 2, 4]), "Python restores artel's group");

    let saved_by_python = world.client("saved_group");
    let id = saved_by_python.as_str().expect("a group id");
    let restored = artel::GroupResult::restore(id, app.backend()).await.expect("restore").expect("saved");
    let values = restored.get(Duration::from_secs(30)).await.expect("values");
    assert_eq!(values, vec![json!(100), json!(101), json!(102)], "artel restores Python's group");
}

#[test]
fn celery_inspect_and_control_reach_an_artel_worker() {
    inspect_and_control_on(Transport::Redis);
}

#[test]
fn on_rabbitmq_celery_inspect_and_control_reach_an_artel_worker() {
    inspect_and_control_on(Transport::RabbitMq);
}

fn inspect_and_control_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    world.start_artel_worker();
    let node = world.node();
    assert_eq!(world.client("call_add"), json!(5), "the worker is up");
    let seen = world.client_with("inspect", &[&node]);
    assert_eq!(seen["ping"], json!({ &node: {"ok": "pong"} }), "{seen}");
    assert_eq!(seen["active"], json!([[true, "sleep"]]), "{seen}");
    assert_eq!(seen["max_concurrency"], json!(8), "{seen}");
    assert!(seen["registered"].as_array().is_some_and(|r| r.contains(&json!("app.add"))), "{seen}");
    assert_eq!((&seen["revoked"], &seen["state"]), (&json!("TaskRevokedError"), &json!("REVOKED")), "{seen}");

    // The command line an operator types, too.
    for (command, expected) in [("ping", "pong"), ("stats", "max-concurrency"), ("conf", r#""worker_concurrency": 8"#)]
    {
        let out =
            world.python().args(["-m", "celery", "-A", "app", "inspect", command, "-d", &node, "--json"]).output();
        let out = out.expect("run celery inspect");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.contains(expected), "celery inspect {command}: {stdout}");
        assert!(!stdout.contains("guest@"), "no credentials in celery inspect {command}: {stdout}");
    }

    world.client_with("shutdown", &[&node]);
    let worker = world.children.last_mut().expect("the worker");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = worker.try_wait().expect("try_wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the worker did not shut down");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "a clean shutdown: {status}");
}

#[test]
fn a_worker_without_dash_e_sends_worker_events_and_task_events_between_enable_and_disable() {
    events_on(Transport::Redis);
}

#[test]
fn on_rabbitmq_a_worker_without_dash_e_sends_worker_events_and_task_events_between_enable_and_disable() {
    events_on(Transport::RabbitMq);
}

/// The same questions to an artel worker and to a Python Celery worker, both started
/// without -E: each answers the same way.
fn events_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    world.start_artel_worker_with(&["-c", "4"]);
    world.start_python_worker_with(&[]);
    for (node, task, queue) in [(world.node(), "app.add", &world.rs), (world.py_node(), "py.mul", &world.py)] {
        let seen = world.client_with("events", &[&node, task, queue]);
        let worker_events = seen["worker_events"].as_array().cloned().unwrap_or_default();
        assert!(worker_events.contains(&json!("worker-heartbeat")), "{node} heartbeats without -E: {seen}");
        assert_eq!(seen["task_events_before"], json!([]), "{node}: no task events without -E: {seen}");
        assert_eq!(seen["enabled"], json!([{ &node: {"ok": "task events enabled"} }]), "{seen}");
        assert_eq!(seen["disabled"], json!([{ &node: {"ok": "task events disabled"} }]), "{seen}");
        assert_eq!(seen["task_events_after"], json!([]), "{node}: none after disable_events: {seen}");
        let on = seen["task_events_on"].as_array().cloned().unwrap_or_default();
        for kind in ["task-received", "task-started", "task-succeeded"] {
            assert!(on.contains(&json!(kind)), "{node} sent {kind} once enabled: {seen}");
        }
        let bad = seen["bad_call_events"].as_array().cloned().unwrap_or_default();
        assert!(bad.contains(&json!("task-failed")), "{node}: a call with bad arguments fails visibly: {seen}");
        assert_eq!(seen["bad_call_exception"], json!("TypeError"), "{seen}");
    }
}

#[test]
fn a_failed_tasks_traceback_reaches_python_and_the_celery_cli() {
    let Some(mut world) = World::new() else { return };
    world.start_artel_worker();
    let failed = world.client("failure_traceback");
    let traceback = failed["traceback"].as_str().unwrap_or_default();
    assert!(traceback.ends_with("ValueError: bad input"), "ends as a Python traceback does: {failed}");
    let id = failed["id"].as_str().expect("an id");
    let out = world.python().args(["-m", "celery", "-A", "app", "result", "--traceback", id]).output();
    let out = out.expect("run celery result");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("ValueError: bad input"), "celery result --traceback: {stdout}");
}

#[test]
fn rate_and_time_limits_set_by_remote_control_apply_in_the_worker() {
    rate_and_time_limits_set_by_remote_control_apply_in_the_worker_on(Transport::Redis);
}

#[test]
fn on_rabbitmq_rate_and_time_limits_set_by_remote_control_apply_in_the_worker() {
    rate_and_time_limits_set_by_remote_control_apply_in_the_worker_on(Transport::RabbitMq);
}

fn rate_and_time_limits_set_by_remote_control_apply_in_the_worker_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    world.start_artel_worker();
    world.start_python_worker();
    for (node, task, queue) in [(world.node(), "app.add", &world.rs), (world.py_node(), "py.mul", &world.py)] {
        let seen = world.client_with("rate_limited", &[&node, task, queue]);
        let reply = |text: &str| json!([{ &node: {"ok": text} }]);
        assert_eq!(seen["limited"], reply("new rate limit set successfully"), "{node}: {seen}");
        assert_eq!((&seen["slow"], &seen["fast"]), (&json!(true), &json!(true)), "{node} at 1/s, then lifted: {seen}");
        assert_eq!(seen["lifted"], reply("rate limit disabled successfully"), "{node}: {seen}");
        assert_eq!(seen["unknown"], json!([{ &node: {"error": "unknown task"} }]), "{node}: {seen}");
        assert_eq!(seen["time_limit"], reply("time limits set successfully"), "{node}: {seen}");
    }

    // The command line an operator types; Celery's thread pool does not enforce time
    // limits, so only artel's worker is checked for the effect.
    let node = world.node();
    let mut set = world.python();
    set.args(["-m", "celery", "-A", "app", "control", "time_limit", "sleep", "1", "2", "-d", &node]);
    let out = set.output().expect("run celery control");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("time limits set successfully"), "{stdout}");
    let ended = world.client_with("time_limited", &[&node]);
    assert_eq!(ended["within_limit"], json!(true), "{ended}");
    let error = ended["error"].as_str().unwrap_or_default();
    assert!(error.contains("TimeLimitExceeded"), "sleep(30) stopped by the new limit: {ended}");
}

#[test]
fn inspect_reserved_scheduled_and_query_task_list_what_a_worker_holds() {
    inspect_held_on(Transport::Redis);
}

#[test]
fn on_rabbitmq_inspect_reserved_scheduled_and_query_task_list_what_a_worker_holds() {
    inspect_held_on(Transport::RabbitMq);
}

/// On RabbitMQ what a worker prefetched waits in its channel: artel lists it as Celery does.
fn inspect_held_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    let (rs, py) = (world.rs.clone(), world.py.clone());
    let artel = world.client_with("publish_held", &["sleep", "app.add", &rs]);
    let python = world.client_with("publish_held", &["py.sleep", "py.mul", &py]);
    // One slot each, started once the calls wait: the first claim takes them all.
    world.start_artel_worker_with(&["-c", "1", "--prefetch", "4"]);
    world.start_python_worker_with(&["--without-heartbeat", "-c", "1"]);
    for (node, ids) in [(world.node(), artel), (world.py_node(), python)] {
        let seen = world.client_with("inspect_held", &[&node, &ids.to_string()]);
        assert_eq!(seen["reserved"], json!(true), "{node} lists the two waiting behind the sleep: {seen}");
        assert_eq!(seen["scheduled"], json!([[true, true]]), "{node} lists the one due later, with its eta: {seen}");
        assert_eq!(seen["query"], json!({"sleeper": "active", "waiting": "reserved"}), "{node}: {seen}");
    }
}

#[test]
fn add_consumer_and_cancel_consumer_change_what_a_worker_serves() {
    add_consumer_and_cancel_consumer_change_what_a_worker_serves_on(Transport::Redis);
}

#[test]
fn on_rabbitmq_add_consumer_and_cancel_consumer_change_what_a_worker_serves() {
    add_consumer_and_cancel_consumer_change_what_a_worker_serves_on(Transport::RabbitMq);
}

fn add_consumer_and_cancel_consumer_change_what_a_worker_serves_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    world.start_artel_worker();
    world.start_python_worker();
    for (node, task, queue) in [(world.node(), "app.add", &world.rs), (world.py_node(), "py.mul", &world.py)] {
        let seen = world.client_with("consumers", &[&node, task, queue]);
        let extra = format!("{queue}-extra");
        assert_eq!(seen["added"], json!([{ &node: {"ok": format!("add consumer {extra}")} }]), "{node}: {seen}");
        assert_eq!((&seen["listed"], &seen["unlisted"]), (&json!(true), &json!(true)), "{node}: {seen}");
        assert!(seen["served"].is_number(), "{node} served the added queue: {seen}");
        let cancelled = json!([{ &node: {"ok": format!("no longer consuming from {extra}")} }]);
        assert_eq!(seen["cancelled"], cancelled, "{node}: {seen}");
        assert_eq!(seen["late"], json!("PENDING"), "{node} no longer serves it: {seen}");
    }
}

#[test]
fn pool_grow_and_shrink_change_how_many_tasks_an_artel_worker_runs_at_once() {
    pool_grow_and_shrink_change_how_many_tasks_an_artel_worker_runs_at_once_on(Transport::Redis);
}

#[test]
fn on_rabbitmq_pool_grow_and_shrink_change_how_many_tasks_an_artel_worker_runs_at_once() {
    pool_grow_and_shrink_change_how_many_tasks_an_artel_worker_runs_at_once_on(Transport::RabbitMq);
}

fn pool_grow_and_shrink_change_how_many_tasks_an_artel_worker_runs_at_once_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    world.start_artel_worker_with(&["-c", "1"]);
    let node = world.node();
    assert_eq!(world.client("call_add"), json!(5), "the worker is up");
    let seen = world.client_with("grown", &[&node]);
    assert_eq!(seen["reply"], json!([{ &node: {"ok": "pool will grow"} }]), "{seen}");
    assert_eq!(seen["size"], json!(2), "{seen}");
    assert_eq!((&seen["side_by_side"], &seen["in_turn"]), (&json!(true), &json!(true)), "{seen}");
}

#[test]
fn remote_control_patterns_address_workers_as_kombu_matches_them() {
    remote_control_patterns_address_workers_as_kombu_matches_them_on(Transport::Redis);
}

#[test]
fn on_rabbitmq_remote_control_patterns_address_workers_as_kombu_matches_them() {
    remote_control_patterns_address_workers_as_kombu_matches_them_on(Transport::RabbitMq);
}

fn remote_control_patterns_address_workers_as_kombu_matches_them_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    world.start_artel_worker();
    world.start_python_worker_with(&[]);
    assert_eq!(world.client("call_add"), json!(5), "the worker is up");
    for node in [world.node(), world.py_node()] {
        let reached = world.client_with("addressed", &[&node]);
        let expected = json!({"glob": true, "glob_other": false, "pcre": true, "pcre_other": false});
        assert_eq!(reached, expected, "{node}");
    }
}

#[test]
fn a_process_pool_worker_shows_its_children_to_celery_inspect_and_grows_on_pool_grow() {
    let Some(mut world) = World::on(Transport::Redis) else { return };
    world.start_artel_worker_with(&["--pool", "processes", "-c", "2", "--max-tasks-per-child", "50"]);
    let node = world.node();
    assert_eq!(world.client("call_add"), json!(5), "a task ran in a child");
    let pool = world.client_with("pool", &[&node]);
    assert_eq!(pool["implementation"], json!("artel:processes"), "{pool}");
    assert!(pool["children"].as_u64().is_some_and(|n| (1..=2).contains(&n)), "{pool}");
    assert_eq!((&pool["max_tasks_per_child"], &pool["before"]), (&json!(50), &json!(2)), "{pool}");
    assert_eq!(pool["grown"], json!([{ &node: {"ok": "pool will grow"} }]), "{pool}");
    assert_eq!(pool["after"], json!(3), "{pool}");
}

#[test]
fn flower_lists_the_artel_worker_and_its_succeeded_tasks() {
    flower_on(Transport::Redis);
}

#[test]
fn on_rabbitmq_flower_lists_the_artel_worker_and_its_succeeded_tasks() {
    flower_on(Transport::RabbitMq);
}

fn flower_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    world.start_artel_worker();
    let port = world.start_flower();
    let node = world.node();
    let seen = world.client_with("flower", &[&port.to_string(), &node]);
    assert_eq!(seen["values"], json!([0, 2, 4]), "{seen}");
    assert_eq!(seen["worker_listed"], json!(true), "{seen}");
    let tasks = json!([["app.add", "SUCCESS", &node], ["app.add", "SUCCESS", &node], ["app.add", "SUCCESS", &node]]);
    assert_eq!(seen["tasks"], tasks, "{seen}");
}

#[test]
fn flower_lists_a_task_an_artel_client_sent_before_any_worker_takes_it() {
    flower_lists_sent_on(Transport::Redis);
}

#[test]
fn on_rabbitmq_flower_lists_a_task_an_artel_client_sent_before_any_worker_takes_it() {
    flower_lists_sent_on(Transport::RabbitMq);
}

/// With `sent_events=true` the artel client sends Celery's `task-sent`: Flower lists the
/// task as PENDING while no worker consumes its queue, as it does one a Python client
/// sent with `task_send_sent_event` (which also shows Flower is listening).
fn flower_lists_sent_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    let port = world.start_flower();
    let port = port.to_string();
    assert_eq!(world.client_with("flower_lists_sent", &[&port]), json!(["app.add", "PENDING"]), "from Python");
    let call = |url: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_celery-interop"))
            .args(["--broker", url, "call", "app.add", "--args", "[2, 3]", "-Q", &world.rs])
            .output()
            .expect("artel call");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let sent = call(&format!("{}&sent_events=true", world.url()));
    assert_eq!(world.client_with("flower_task", &[&port, &sent]), json!(["app.add", "PENDING"]), "from artel");
    let unsent = call(&world.url());
    assert_eq!(world.client_with("flower_task", &[&port, &unsent, "3"]), Value::Null, "without sent_events: no event");
}

/// A Prometheus exporter for Celery from PyPI (celery-prometheus-exporter, fed by the
/// workers' events and `ping`) counts an artel worker and its successes, failures and
/// run times as it counts a Python worker's.
#[test]
fn a_prometheus_exporter_for_celery_counts_artel_and_python_workers_alike() {
    exporter_on(Transport::Redis);
}

#[test]
fn on_rabbitmq_a_prometheus_exporter_for_celery_counts_artel_and_python_workers_alike() {
    exporter_on(Transport::RabbitMq);
}

fn exporter_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    world.start_artel_worker();
    world.start_python_worker_with(&["-E", "--without-heartbeat"]);
    let port = free_port();
    let options = json!({"global_keyprefix": world.prefix}).to_string();
    let broker = world.python_broker();
    let exporter = world
        .python()
        .args(["-m", "celery_prometheus_exporter", "--broker", &broker, "--transport-options", &options])
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start celery-prometheus-exporter");
    world.children.push(exporter);
    let exported = world.client_with("exported", &[&port.to_string()]);
    let expected = json!({
        "celery_tasks_by_name SUCCESS app.add": 3.0, "celery_tasks_by_name SUCCESS py.mul": 2.0,
        "celery_tasks_by_name FAILURE app.fail": 1.0, "celery_tasks_by_name FAILURE app.add": 1.0,
        "celery_tasks_by_name FAILURE py.mul": 1.0,
        "celery_tasks_runtime_seconds_count app.add": 3.0, "celery_tasks_runtime_seconds_count py.mul": 2.0,
        "celery_workers": 2.0,
    });
    assert_eq!(exported, expected);
}

/// `artel worker --python pytasks:app` runs ordinary Celery tasks in Python children
/// (plain, `bind=True` with `self.request`, `self.retry` and `update_state`,
/// `autoretry_for`, `Ignore`, `Reject`, a soft time limit caught and not, a hard one,
/// exceptions, `os.abort()`, a leak past `--max-memory-per-child`, dates and decimals,
/// chain, group and chord), and every outcome reads back through `AsyncResult` as it does
/// from a Celery prefork worker running the same app beside it, with the same signals
/// fired; one chain runs over both and a Rust artel worker; Flower lists the Python tasks
/// the artel worker ran.
#[test]
fn an_artel_worker_runs_ordinary_celery_tasks_in_python_children_as_celery_prefork_does() {
    python_children_on(Transport::Redis);
}

#[test]
fn on_rabbitmq_an_artel_worker_runs_ordinary_celery_tasks_in_python_children_as_celery_prefork_does() {
    python_children_on(Transport::RabbitMq);
}

fn python_children_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    let artel = world
        .in_python_dir(Path::new(env!("CARGO_BIN_EXE_celery-interop")))
        .args(["--broker", &world.url(), "worker", "-E", "-Q", &world.rs, "-n", &world.node(), "-c", "2"])
        .args(["--max-memory-per-child", "150MiB", "--python", "pytasks:app", "--python-exe"])
        .arg(&world.python)
        .env("PYTASKS_SIGNALS", world.scratch("signals-artel"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the artel worker");
    let artel_pid = artel.id();
    world.children.push(artel);
    let celery = world
        .python()
        .args(["-m", "celery", "-A", "pytasks", "worker", "-Q", &world.py, "-P", "prefork", "-c", "2", "-l", "warning"])
        .args(["--max-memory-per-child", "153600"]) // KiB
        .args(["--without-mingle", "--without-gossip", "--without-heartbeat", "-n", &world.py_node()])
        .env("PYTASKS_SIGNALS", world.scratch("signals-celery"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the Celery prefork worker");
    world.children.push(celery);
    let (rs, py) = (world.rs.clone(), world.py.clone());
    let rust = Command::new(env!("CARGO_BIN_EXE_celery-interop"))
        .args(["--broker", &world.url(), "worker", "-Q", "rust", "-n", &format!("rust-{}", world.node()), "-c", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the Rust artel worker");
    world.children.push(rust);
    let mixed = world.client_with("three_kinds_chain", &[&rs, &py, "rust"]);
    assert_eq!(mixed, json!(35), "Python by artel, Python by Celery, Rust by artel in one chain");
    let signals = |worker: &str| world.scratch(&format!("signals-{worker}"));
    let seen = |worker: &str| std::fs::read_to_string(signals(worker)).unwrap_or_default();
    assert!(seen("artel").contains("worker_process_init"), "worker_process_init fires in each Python child");
    for worker in ["artel", "celery"] {
        let _ = std::fs::remove_file(signals(worker));
    }
    let mut by_artel = world.client_with("python_tasks", &[&rs]);
    let mut by_celery = world.client_with("python_tasks", &[&py]);
    assert_eq!(by_artel["add"], json!({"value": 5, "state": "SUCCESS"}), "{by_artel}");
    assert_eq!(by_artel["flaky"], json!({"value": 2, "state": "SUCCESS"}), "retried twice by the worker: {by_artel}");
    let whoami = json!({
        "own_id": true, "retries": 0, "args": [1, "two"], "kwargs": {"k": 3}, "hostname": true,
        "root_is_self": true, "parent_id": null, "correlation_is_id": true, "eta": null, "routed_to_queue": true,
        "redelivered": false,
    });
    assert_eq!(by_artel["whoami"], whoami, "self.request: {by_artel}");
    let auto = json!({"state": "FAILURE", "type": "ValueError", "message": "still broken", "traceback": false});
    assert_eq!(by_artel["auto"], auto, "autoretry_for, then the error itself: {by_artel}");
    assert_eq!(by_artel["boom"]["traceback"], json!(true), "the Python traceback is kept: {by_artel}");
    assert_eq!(by_artel["abort"]["type"], json!("WorkerLostError"), "{by_artel}");
    assert_eq!(by_artel["after_abort"]["value"], json!(42), "the child was replaced: {by_artel}");
    let progress = json!({"shown": ["PROGRESS", {"done": 1}], "value": "finished"});
    assert_eq!(by_artel["progress"], progress, "update_state is visible to AsyncResult.info: {by_artel}");
    assert_eq!(by_artel["chain"], json!(6), "a chain of Python tasks: {by_artel}");
    assert_eq!(by_artel["ignored"], json!(["CUSTOM", {"kept": true}]), "Ignore records nothing: {by_artel}");
    assert_eq!(by_artel["leak_recycled"], json!(true), "a child past --max-memory-per-child is replaced");
    let soft = json!({"value": "cleaned up", "state": "SUCCESS"});
    assert_eq!(by_artel["soft"], soft, "SoftTimeLimitExceeded raised in the task: {by_artel}");
    assert_eq!(by_artel["soft_uncaught"]["type"], json!("SoftTimeLimitExceeded"), "{by_artel}");
    assert_eq!(by_artel["hard"]["type"], json!("TimeLimitExceeded"), "the child was killed: {by_artel}");
    assert_eq!((&by_artel["chord"], &by_artel["group"]), (&json!(12), &json!([1, 2, 3])), "{by_artel}");
    let reject = json!({"state": "FAILURE", "type": "Reject", "message": "('not for us', False)", "traceback": false});
    assert_eq!(by_artel["reject"], reject, "Reject(requeue=False) stores a FAILURE: {by_artel}");
    assert_eq!(by_artel["requeue_once"]["value"], json!("second"), "Reject(requeue=True) runs it again");
    let types = json!([
        "['datetime', datetime.datetime(2025, 5, 6, 7, 8, 9), datetime.datetime(2026, 1, 2, 3, 4, 5)]",
        "['UUID', UUID('00000000-0000-0000-0000-000000000007'), datetime.datetime(2026, 1, 2, 3, 4, 5)]",
        "['Decimal', Decimal('1.25'), datetime.datetime(2026, 1, 2, 3, 4, 5)]",
    ]);
    assert_eq!(by_artel["types"], types, "Celery's JSON both ways: {by_artel}");
    assert_eq!(by_artel["unencodable"]["type"], json!("EncodeError"), "{by_artel}");
    assert_eq!(by_artel["type_error"]["type"], json!("TypeError"), "{by_artel}");
    assert_eq!(by_artel["bad_arguments"]["type"], json!("TypeError"), "{by_artel}");
    let details = json!({"state": "FAILURE", "type": "LookupError", "message": "('code 7', {'retry': False})", "traceback": false});
    assert_eq!(by_artel["details"], details, "an exception's arguments are kept: {by_artel}");
    // The one difference: how each words a child's death.
    for seen in [&mut by_artel, &mut by_celery] {
        seen["abort"]["message"].take();
        seen["hard"]["message"].take();
    }
    assert_eq!(by_artel, by_celery, "artel and Celery prefork read the same");
    // The signals the tasks hook fired alike, but for the two whose child died: Celery's
    // main process (Python) fires their task_failure; artel's (Rust) has no Python to.
    let fired = |worker: &str| {
        let mut lines: Vec<String> = seen(worker)
            .lines()
            .filter(|line| {
                !line.contains("worker_process_init") && !line.contains("pt.abort") && !line.contains("pt.hard")
            })
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let by_artel = fired("artel");
    for line in
        ["prerun pt.add", "postrun pt.flaky RETRY", "retry pt.flaky", "success pt.add", "failure pt.boom KeyError"]
    {
        assert!(by_artel.iter().any(|seen| seen == line), "{line} fired: {by_artel:?}");
    }
    assert_eq!(by_artel, fired("celery"), "task_prerun/postrun/success/failure/retry as Celery fires them");
    let node = world.node();
    let inspect = ["-m", "celery", "-A", "app", "inspect", "registered", "-d", &node, "--json"];
    let out = world.python().args(inspect).output().expect("run celery inspect registered");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pt.whoami") && stdout.contains("py.mul"), "the Python tasks are registered: {stdout}");
    let port = world.start_flower().to_string();
    let seen = world.client_with("flower", &[&port, &node, "pt.add", &world.rs]);
    let tasks = json!([["pt.add", "SUCCESS", &node], ["pt.add", "SUCCESS", &node], ["pt.add", "SUCCESS", &node]]);
    assert_eq!((&seen["values"], &seen["tasks"]), (&json!([0, 2, 4]), &tasks), "Flower: {seen}");
    // A warm stop removes the children's private directory.
    let private = format!("artel-python-{artel_pid}-");
    let left = || {
        std::fs::read_dir(std::env::temp_dir())
            .map(|dir| dir.flatten().any(|e| e.file_name().to_string_lossy().starts_with(&private)))
            .unwrap_or(false)
    };
    assert!(left(), "the worker keeps its children's module in a private directory");
    let status = Command::new("kill").args(["-TERM", &artel_pid.to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while left() {
        assert!(std::time::Instant::now() < deadline, "the worker's private directory outlived it");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_lists_python_workers_and_their_tasks_from_celerys_events() {
    dashboard_on(Transport::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_rabbitmq_the_dashboard_lists_python_workers_and_their_tasks_from_celerys_events() {
    dashboard_on(Transport::RabbitMq).await;
}

/// `artel dashboard` on a Celery layout, as Flower: a Python worker (heartbeats on, task
/// events turned on by the dashboard's `enable_events`) is listed, and its tasks with
/// their states, names and arguments.
async fn dashboard_on(transport: Transport) {
    let Some(mut world) = World::on(transport) else { return };
    let mut dashboard = Command::new(env!("CARGO_BIN_EXE_celery-interop"))
        .args(["--broker", &world.url(), "dashboard", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the dashboard");
    let stderr = dashboard.stderr.take().expect("stderr");
    world.children.push(dashboard);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("dashboard at http://").nth(1) {
                let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
            }
        }
    });
    let address = rx.recv_timeout(Duration::from_secs(20)).expect("the dashboard says where it listens");
    // Heartbeats on, task events off: the dashboard turns them on, as Flower does.
    world.start_python_worker_with(&[]);
    let get = |path: &str| -> Value {
        let out = Command::new("curl").args(["-s", &format!("http://{address}{path}")]).output().expect("curl");
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let node = world.py_node();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !get("/api/workers").as_array().is_some_and(|w| w.iter().any(|w| w["name"] == json!(node))) {
        assert!(std::time::Instant::now() < deadline, "the Python worker was never listed: {}", get("/api/workers"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The dashboard asks for task events every 5 s; give that time to land.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let connection = connect(&world.url()).await.expect("connect");
    let app = App::new(connection.backend);
    let product = app.send_task(Signature::new("py.mul").with_args(vec![json!(6), json!(7)]).queue(&world.py)).await;
    let product = product.expect("sent");
    assert_eq!(product.get(Duration::from_secs(30)).await.expect("value"), json!(42));
    let path = format!("/api/tasks/{}", product.id());
    while get(&path)["record"]["state"] != json!("SUCCESS") {
        assert!(std::time::Instant::now() < deadline, "the task never showed SUCCESS: {}", get(&path));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let record = &get(&path)["record"];
    assert_eq!(
        (&record["task"], &record["worker"], &record["args"]),
        (&json!("py.mul"), &json!(node), &json!("[6,7]")),
        "{record}"
    );
    assert!(record["runtime_ms"].is_u64() && record["started_at_ms"].is_i64(), "{record}");
}

static EMBEDDED_RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Counts its runs, so a revoked call can be seen not to run.
#[artel::task(name = "app.count")]
async fn count() -> u32 {
    EMBEDDED_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
}

/// A worker built through the library inside a program of its own (not `artel worker`)
/// has what the command-line worker has: it reports to `artel stats`, honours a revoke,
/// and answers `celery inspect`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_embedded_in_a_program_reports_honours_revokes_and_answers_celery_inspect() {
    use std::sync::atomic::Ordering;
    let Some(world) = World::new() else { return };
    let connection = connect(&world.url()).await.expect("connect");
    let node = world.node();
    let config = artel::WorkerConfig {
        name: Some(node.clone()),
        queues: vec![world.rs.clone()],
        revoke_poll: Duration::from_millis(50),
        ..artel::WorkerConfig::default()
    };
    let worker = connection.worker(artel::Registry::new().with(count), config).build().expect("a worker");
    let stats = worker.stats();
    let pool = artel::pool::Pool::builder().on_runtime(tokio::runtime::Handle::current()).build().expect("pool");
    let stop = artel::Stop::default();
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(&pool, stop).await }
    });

    let app = App::new(connection.backend.clone());
    let sent = app.send_task(Signature::new("app.count").queue(world.rs.clone())).await.expect("send");
    assert_eq!(sent.get(Duration::from_secs(10)).await.expect("it runs"), json!(1));
    let admin = connection.backend.workers().cloned().expect("celery+redis keeps worker reports");
    let reported = admin.workers().await.expect("workers");
    assert!(reported.iter().any(|w| w.name == node), "artel stats lists {node}: {reported:?}");

    let later = Signature::new("app.count").queue(world.rs.clone()).countdown(Duration::from_millis(800));
    let id = app.send(later).await.expect("send");
    app.revoke(&id, false).await.expect("revoke");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats.revoked.load(Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "the revoked message was never discarded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(EMBEDDED_RUNS.load(Ordering::SeqCst), 1, "the revoked call did not run");

    let out = world
        .python()
        .args(["-m", "celery", "-A", "app", "inspect", "ping", "-d", &node, "--json"])
        .output()
        .expect("run celery inspect");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("pong"), "celery inspect ping: {stdout}");

    stop.warm.cancel();
    running.await.expect("the worker task").expect("a clean stop");
    let reported = admin.workers().await.expect("workers");
    assert!(!reported.iter().any(|w| w.name == node), "a stopped worker leaves artel stats: {reported:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_worker_runs_what_artel_beat_sends_on_celery_redis() {
    let Some(mut world) = World::on(Transport::Redis) else { return };
    world.start_python_worker();
    let text = format!(
        "[[schedule]]\nname = \"mul\"\ntask = \"py.mul\"\nargs = [6, 7]\nqueue = \"{}\"\nevery = \"1s\"\n",
        world.py
    );
    let dir = std::env::temp_dir().join(format!("artel-interop-beat-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let schedule = dir.join("beat.toml");
    std::fs::write(&schedule, &text).expect("schedule");
    let beat = Command::new(env!("CARGO_BIN_EXE_celery-interop"))
        .args(["--broker", &world.url(), "beat", "--schedule"])
        .arg(&schedule)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start artel beat");
    world.children.push(beat);
    // Each fire's task id is derived from the entry and the fire second: look for the
    // Python worker's results under the ids of the last few seconds.
    let entry = artel::beat::Schedule::parse(&text).expect("valid").entries.remove(0);
    let connection = artel::connect(&world.url()).await.expect("open");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut ran = std::collections::BTreeSet::new();
    while ran.len() < 2 {
        assert!(std::time::Instant::now() < deadline, "the Python worker ran {ran:?}");
        let now = chrono::Utc::now().timestamp();
        for second in now - 10..=now {
            let fire = chrono::DateTime::from_timestamp(second, 0).expect("a time").fixed_offset();
            let id = entry.task_id(fire);
            if let Ok(Some(result)) = connection.backend.results().get(&id).await {
                assert_eq!(result.result, json!(42), "{result:?}");
                ran.insert(second);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
