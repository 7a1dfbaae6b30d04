//! A 1,000-member chord served by two worker processes completes exactly once, on the
//! embedded SQLite broker and on Redis.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use artel::core::Signature;
use artel::{App, chain, chord, connect};
use serde_json::{Value, json};

const MEMBERS: usize = 1_000;

/// Member `i` reports its worker's pid and its index: `"<pid> <i>"`.
fn member(i: usize) -> Signature {
    Signature::new("exec").with_args(vec![json!("sh"), json!(["-c", format!("echo $PPID {i}")])])
}

/// Runs the chord on `url` with two worker processes and checks it, reading values back.
async fn chord_across_two_workers(url: &str, fired: &str) {
    let connection = connect(url).await.expect("open the broker");
    let app = App::new(connection.backend.clone());
    let workers = [
        support::WorkerProcess::start(url, &["--enable", "exec", "-c", "32", "--prefetch", "8"]),
        support::WorkerProcess::start(url, &["--enable", "exec", "-c", "32", "--prefetch", "8"]),
    ];
    let collect_id = uuid::Uuid::new_v4().to_string();
    // The body: `echo` gets the list of member results; then a step that counts firings.
    let record = format!("echo fired >> {fired}");
    let body = chain([
        Signature::new("echo").task_id(collect_id.clone()),
        Signature::new("exec").with_args(vec![json!("sh"), json!(["-c", record])]).immutable(),
    ]);
    let result = app.send_task(chord((0..MEMBERS).map(member), body)).await.expect("sent");
    result.get(Duration::from_secs(120)).await.expect("the chord completes");

    let collected = artel::AsyncResult::<Vec<Value>>::new(collect_id, app.backend());
    let outputs = collected.get(Duration::from_secs(5)).await.expect("the body's first step");
    assert_eq!(outputs.len(), MEMBERS, "every member's result, once");
    let mut pids = BTreeSet::new();
    for (i, output) in outputs.iter().enumerate() {
        let line = output["stdout"].as_str().expect("exec output").trim().to_owned();
        let (pid, index) = line.split_once(' ').expect("pid and index");
        assert_eq!(index, i.to_string(), "results in member order");
        pids.insert(pid.parse::<u32>().expect("a pid"));
    }
    let worker_pids: BTreeSet<u32> = workers.iter().map(support::WorkerProcess::pid).collect();
    assert_eq!(pids, worker_pids, "both workers served members");
    // Give a duplicate firing every chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let firings = std::fs::read_to_string(fired).expect("the body ran").lines().count();
    assert_eq!(firings, 1, "the body ran exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_member_chord_completes_once_across_two_sqlite_workers() {
    let db = artel_broker_tests::ScratchDb::new("chord");
    let fired = format!("{}.fired", db.path().display());
    let url = format!("sqlite://{}?poll_ms=10", db.path().display());
    chord_across_two_workers(&url, &fired).await;
    let _ = std::fs::remove_file(&fired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_member_chord_completes_once_across_two_redis_workers() {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let fired = std::env::temp_dir().join(format!("{prefix}.fired")).display().to_string();
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: fired.clone() };
    let url = format!("{}?prefix={prefix}&poll_ms=20", support::redis_url());
    if let Err(e) = connect(&url).await {
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "Redis is required: {e}");
        eprintln!("skipped: no Redis at {url}: {e}");
        return;
    }
    chord_across_two_workers(&url, &fired).await;
}
