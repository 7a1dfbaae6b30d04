//! A worker draining tasks while the master under it is killed: the same run for every
//! replicated Redis (a Sentinel set, a cluster), which says how to find, kill and bring
//! back its master.

use std::process::Command;
use std::time::{Duration, Instant};

use artel::{App, Signature};
use serde_json::json;

use super::{a_quarter_done, succeeded};

/// Tasks queued before the kill.
pub const TASKS: usize = 2_000;

/// A replicated Redis whose master a test may kill.
pub trait Replicated {
    /// The broker URL for keys under `prefix`, waiting for `replicas` on each publish.
    fn url(&self, prefix: &str, replicas: u32) -> String;
    /// The port of the master to kill (the one holding the queue), once a replica of it
    /// is in sync.
    fn master_in_sync(&self, prefix: &str) -> String;
    /// Whether a replica has taken over from the master on `port`.
    fn promoted(&self, port: &str) -> bool;
    /// Starts the killed node on `port` again, to come back as a replica.
    fn restart(&self, port: &str);
    /// Deletes every key under `prefix`.
    fn clean(&self, prefix: &str);
    /// What the set looks like now (its nodes and their roles), for a failing test.
    fn state(&self) -> String;
}

pub fn redis_cli(port: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-p", port]).args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the node on `port` is a master with a replica in sync.
pub fn has_replica_in_sync(port: &str) -> bool {
    let info = redis_cli(port, &["info", "replication"]);
    info.contains("role:master") && info.contains("state=online")
}

/// What one failover cost.
pub struct Failover {
    /// Publishes the broker acknowledged.
    pub acknowledged: usize,
    /// Of those, tasks that never got a result.
    pub lost: usize,
    pub promoted_after: Duration,
    /// From the kill to the last result seen.
    pub finished_after: Duration,
}

/// Publishes `TASKS` tasks, starts a worker, and kills the master once a quarter is done,
/// while a producer keeps publishing through the failover; then waits for every
/// acknowledged task's result (a minute at most).
pub async fn failover(set: &dyn Replicated, replicas: u32) -> Failover {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let port = set.master_in_sync(&prefix);
    let url = set.url(&prefix, replicas);
    let app = App::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut ids, mut worker) = a_quarter_done(&app, &url, (TASKS, 0.02), &["-c", "16"], deadline).await;

    // A producer publishing through the failover: what the broker acknowledged must run.
    let stop = tokio_util::sync::CancellationToken::new();
    let producer = {
        let (app, stop) = (App::connect(&url).await.expect("producer"), stop.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            while !stop.is_cancelled() {
                match app.send(Signature::new("sleep").with_args(vec![json!(0.0)])).await {
                    Ok(id) => acknowledged.push(id),
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = redis_cli(&port, &["info", "server"])
        .lines()
        .find_map(|l| l.strip_prefix("process_id:").map(|p| p.trim().to_owned()))
        .expect("the master's pid");
    let killed_at = Instant::now();
    assert!(Command::new("kill").args(["-9", &pid]).status().expect("kill").success());
    while !set.promoted(&port) {
        assert!(Instant::now() < deadline, "no replica was promoted:\n{}\n{}", set.state(), worker.tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let promoted_after = killed_at.elapsed();
    set.restart(&port);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    let acknowledged = producer.await.expect("producer");
    ids.extend(acknowledged);

    // Done when all are, or when nothing moved for well longer than leases take to lapse
    // and the worker's reconnect backoff (on a loaded CI machine, over 10 s).
    let (mut finished, mut moved_at, mut finished_after) = (0, Instant::now(), Duration::ZERO);
    while finished < ids.len() && Instant::now() < deadline && moved_at.elapsed() < Duration::from_secs(25) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Bounded: a read must not hang the test where a client fails to notice a dead node.
        let read = tokio::time::timeout(Duration::from_secs(10), app.backend().results().get_many(&ids));
        if let Ok(Ok(states)) = read.await {
            let now = succeeded(&states);
            if now > finished {
                (finished, moved_at, finished_after) = (now, Instant::now(), killed_at.elapsed());
            }
        }
    }
    let exited = worker.0.try_wait().expect("worker");
    assert!(exited.is_none(), "the same worker, never restarted; it exited {exited:?}; {}", worker.tail());
    worker.signal("-TERM");
    worker.wait(Duration::from_secs(30));
    // After the worker stopped: it writes its last task history as it stops.
    set.clean(&prefix);
    Failover { acknowledged: ids.len(), lost: ids.len() - finished, promoted_after, finished_after }
}

/// Both runs on one set, killing its master in turn: with `replicas=1` nothing
/// acknowledged is lost; with 0 the producer goes on through the failover.
pub async fn nothing_acknowledged_is_lost_with_replicas_1(set: &dyn Replicated) {
    let safe = failover(set, 1).await;
    eprintln!(
        "replicas=1: {} acknowledged, {} lost; promoted after {:?}, all done {:?} after the kill",
        safe.acknowledged, safe.lost, safe.promoted_after, safe.finished_after
    );
    assert_eq!(safe.lost, 0, "with replicas=1 every acknowledged task runs:\n{}", set.state());
    let fast = failover(set, 0).await;
    eprintln!(
        "replicas=0: {} acknowledged, {} lost; promoted after {:?}, done {:?} after the kill",
        fast.acknowledged, fast.lost, fast.promoted_after, fast.finished_after
    );
    assert!(fast.acknowledged > TASKS, "the producer went on through the failover");
}
