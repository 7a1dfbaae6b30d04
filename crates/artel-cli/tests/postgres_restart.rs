//! A private PostgreSQL cluster (initdb in a temp dir) restarted in the middle of a
//! 1,000-task run: the worker and the producer reconnect on their own, and every task
//! ends SUCCESS.

mod support;

use std::time::{Duration, Instant};

use artel::{App, Signature, State};
use artel_broker_tests::cluster::Cluster;
use serde_json::json;
use support::WorkerProcess;

const TASKS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_succeeds_across_a_server_restart() {
    let Some(cluster) = Cluster::start(&[]) else { return };
    let url = format!("{}?schema=artel&poll_ms=100&lease_ms=5000", cluster.url("127.0.0.1"));
    let app = App::connect(&url).await.unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tail()));
    let mut ids = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        ids.push(app.send(Signature::new("sleep").with_args(vec![json!(0.01)])).await.expect("published"));
    }
    let mut worker = WorkerProcess::start(&url, &["-c", "8"]);
    let done = |states: &[Option<artel::TaskResult>]| {
        states.iter().filter(|r| r.as_ref().is_some_and(|r| r.status == State::Success)).count()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while done(&app.backend().results().get_many(&ids).await.expect("read")) < TASKS / 4 {
        assert!(Instant::now() < deadline, "the worker did not get going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let restarted_at = Instant::now();
    cluster.pg_ctl("restart");
    eprintln!("restarted the server in {:?}", restarted_at.elapsed());
    let mut finished = 0;
    while finished < TASKS {
        assert!(Instant::now() < deadline, "{finished} of {TASKS} succeeded within 90 s\n{}", cluster.log_tail());
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(states) = app.backend().results().get_many(&ids).await {
            finished = done(&states);
        }
    }
    eprintln!("all {TASKS} succeeded {:?} after the restart began", restarted_at.elapsed());
    assert!(worker.0.try_wait().expect("worker").is_none(), "the same worker, never restarted");
    worker.signal("-TERM");
    worker.wait(Duration::from_secs(30));
}
