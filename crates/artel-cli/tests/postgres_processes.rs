//! Worker processes on PostgreSQL surviving failures: a private cluster (initdb in a temp
//! dir) restarted in the middle of a 1,000-task run, after which the worker and the
//! producer reconnect on their own and every task ends SUCCESS; a task on a worker
//! killed with SIGKILL, completed by another once its lease lapses; and the CLI's
//! queues, dead letters and failed tasks.

mod support;

use std::time::{Duration, Instant};

use artel::App;
use artel_broker_tests::cluster::Cluster;

const TASKS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_succeeds_across_a_server_restart() {
    let Some(cluster) = Cluster::start(&[]) else { return };
    let url = format!("{}?schema=artel&poll_ms=100&lease_ms=5000", cluster.url("127.0.0.1"));
    let app = App::connect(&url).await.unwrap_or_else(|e| panic!("{e}\n{}", cluster.log_tail()));
    let deadline = Instant::now() + Duration::from_secs(90);
    let (ids, mut worker) = support::a_quarter_done(&app, &url, (TASKS, 0.01), &["-c", "8"], deadline).await;
    let restarted_at = Instant::now();
    cluster.pg_ctl("restart");
    eprintln!("restarted the server in {:?}", restarted_at.elapsed());
    let mut finished = 0;
    while finished < TASKS {
        assert!(Instant::now() < deadline, "{finished} of {TASKS} succeeded within 90 s\n{}", cluster.log_tail());
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(states) = app.backend().results().get_many(&ids).await {
            finished = support::succeeded(&states);
        }
    }
    eprintln!("all {TASKS} succeeded {:?} after the restart began", restarted_at.elapsed());
    assert!(worker.0.try_wait().expect("worker").is_none(), "the same worker, never restarted");
    worker.signal("-TERM");
    worker.wait(Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_on_a_killed_postgres_worker_completes_on_another_after_its_lease() {
    let schema = format!("artel_test_{}", uuid::Uuid::new_v4().simple());
    let base =
        std::env::var("ARTEL_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let url = format!("{base}?schema={schema}&lease_ms=1000&poll_ms=50");
    let connection = artel::connect(&url).await.unwrap_or_else(|e| panic!("PostgreSQL is required: {e}"));
    let runs = std::env::temp_dir().join(format!("{schema}.runs")).display().to_string();
    support::a_task_on_a_killed_worker_completes_on_another(&connection, &url, &runs).await;
    let _ = std::fs::remove_file(&runs);
    if let Some(postgres) = &connection.postgres {
        let _ = postgres.delete_namespace().await;
    }
}

#[test]
fn the_cli_lists_dead_letters_queues_and_failed_tasks_on_postgres() {
    let Some(broker) = support::brokers::postgres("poll_ms=20") else { return };
    support::dead_letters_round_trip(&broker.url);
    support::failed_tasks_round_trip(&broker.url);
}
