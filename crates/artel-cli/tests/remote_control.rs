//! `artel inspect` and `artel control` against a running `artel worker` on each native
//! broker: the questions and commands Celery operators know, with Celery's reply
//! shapes, read back from the worker's replies and from what the worker then does.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{WorkerProcess, artel};

#[test]
fn a_sqlite_worker_answers_inspect_and_control() {
    let broker = support::brokers::sqlite("poll_ms=20");
    inspect_and_control(&broker.url, "sqlite");
}

#[test]
fn a_redis_worker_answers_inspect_and_control() {
    let Some(broker) = support::brokers::redis("poll_ms=20") else { return };
    inspect_and_control(&broker.url, "redis");
}

#[test]
fn a_postgres_worker_answers_inspect_and_control() {
    let Some(broker) = support::brokers::postgres("poll_ms=20") else { return };
    inspect_and_control(&broker.url, "postgres");
}

/// `artel ARGS --json` on `url`: the replies by node, or `None` when nobody replied
/// (status 3).
fn ask(url: &str, args: &[&str]) -> Option<Value> {
    let (code, stdout, stderr) = artel(url, &[args, &["--json"]].concat());
    match code {
        0 => Some(serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))),
        3 => None,
        _ => panic!("{args:?} exited {code}: {stderr}"),
    }
}

/// Asks until `check` accepts node `node`'s reply, for at most 15 s.
fn ask_until(url: &str, args: &[&str], node: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = ask(url, args).map(|replies| replies[node].clone());
        if let Some(reply) = reply.filter(|reply| check(reply)) {
            return reply;
        }
        assert!(Instant::now() < deadline, "{args:?}: no reply from {node} as expected within 15 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn inspect_and_control(url: &str, transport: &str) {
    let node = format!("remote-{}@test", uuid::Uuid::new_v4().simple());
    let mut worker = WorkerProcess::start(url, &["-c", "2", "-n", &node]);
    let to = ["-d", node.as_str()];
    ask_until(url, &[&["inspect", "ping"][..], &to].concat(), &node, |r| r == &json!({"ok": "pong"}));
    assert_eq!(ask(url, &["inspect", "ping", "-d", "nobody@test", "-t", "0.3"]), None, "only the addressed answer");

    // What it runs and knows.
    let (code, id, _) = artel(url, &["call", "sleep", "--args", "[5]"]);
    assert_eq!(code, 0);
    let id = id.trim().to_owned();
    let active = ask_until(url, &[&["inspect", "active"][..], &to].concat(), &node, |r| r[0]["id"] == json!(id));
    assert_eq!((active[0]["name"].clone(), active[0]["hostname"].clone()), (json!("sleep"), json!(node)));
    let found = ask(url, &[&["inspect", "query_task", &id][..], &to].concat()).expect("query_task");
    assert_eq!(found[&node][&id][0], json!("active"), "{found}");
    let registered = ask(url, &[&["inspect", "registered"][..], &to].concat()).expect("registered");
    let names = registered[&node].as_array().expect("names");
    assert!(names.contains(&json!("echo")) && names.contains(&json!("sleep")), "{registered}");

    // Limits: a known task takes them, an unknown one is named.
    let set = ask(url, &[&["control", "rate_limit", "echo", "20/s"][..], &to].concat()).expect("rate_limit");
    assert_eq!(set[&node], json!({"ok": "new rate limit set successfully"}));
    let unknown = ask(url, &[&["control", "rate_limit", "no.such", "1/s"][..], &to].concat()).expect("rate_limit");
    assert_eq!(unknown[&node], json!({"error": "unknown task"}));
    let limits = ask(url, &[&["control", "time_limit", "echo", "5", "10"][..], &to].concat()).expect("time_limit");
    assert_eq!(limits[&node], json!({"ok": "time limits set successfully"}));

    // A queue added is served, and no longer once cancelled.
    let added = ask(url, &[&["control", "add_consumer", "extra"][..], &to].concat()).expect("add_consumer");
    assert_eq!(added[&node], json!({"ok": "add consumer extra"}));
    let queues = ask(url, &[&["inspect", "active_queues"][..], &to].concat()).expect("active_queues");
    let names: Vec<&Value> = queues[&node].as_array().expect("queues").iter().map(|q| &q["name"]).collect();
    assert_eq!(names, [&json!("celery"), &json!("extra")]);
    let (code, result, stderr) =
        artel(url, &["call", "echo", "--args", "[7]", "-Q", "extra", "--wait", "--timeout", "15"]);
    assert_eq!((code, result.trim()), (0, "7"), "{stderr}");
    let cancelled = ask(url, &[&["control", "cancel_consumer", "extra"][..], &to].concat()).expect("cancel_consumer");
    assert_eq!(cancelled[&node], json!({"ok": "no longer consuming from extra"}));
    let queues = ask(url, &[&["inspect", "active_queues"][..], &to].concat()).expect("active_queues");
    assert_eq!(queues[&node].as_array().map(Vec::len), Some(1), "{queues}");

    // Concurrency grows, and the settings say so with where the broker is.
    let grown = ask(url, &[&["control", "pool_grow", "2"][..], &to].concat()).expect("pool_grow");
    assert_eq!(grown[&node], json!({"ok": "pool will grow"}));
    let stats = ask(url, &[&["inspect", "stats"][..], &to].concat()).expect("stats");
    assert_eq!(stats[&node]["pool"]["max-concurrency"], json!(4), "{stats}");
    assert_eq!(stats[&node]["broker"]["transport"], json!(transport), "{stats}");
    let conf = ask(url, &[&["inspect", "conf"][..], &to].concat()).expect("conf");
    assert_eq!(conf[&node]["worker_concurrency"], json!(4), "{conf}");
    assert!(conf[&node]["broker_url"].as_str().is_some_and(|u| u.starts_with(&format!("{transport}://"))), "{conf}");

    // Revoked by remote control: listed, and the running task is not stopped without --terminate.
    let revoked = ask(url, &[&["control", "revoke", "some-task-id"][..], &to].concat()).expect("revoke");
    assert_eq!(revoked[&node], json!({"ok": "tasks some-task-id flagged as revoked"}));
    let listed = ask(url, &[&["inspect", "revoked"][..], &to].concat()).expect("revoked");
    assert!(listed[&node].as_array().is_some_and(|ids| ids.contains(&json!("some-task-id"))), "{listed}");

    // Shutdown: a warm stop, no reply; the running sleep finishes first.
    let (code, _, _) = artel(url, &["control", "shutdown", "-d", &node]);
    assert_eq!(code, 0);
    assert!(worker.wait(Duration::from_secs(20)).success(), "a warm stop exits 0");
    let (code, state, _) = artel(url, &["result", &id]);
    assert!(code == 0 && state.contains("5"), "the running task finished before the stop: {state}");
    assert_eq!(ask(url, &["inspect", "ping", "-t", "0.3"]), None, "nobody left to answer");
}
