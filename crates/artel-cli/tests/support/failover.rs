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
    /// Makes the killed master's replica take over, when the set's own election has not
    /// promoted one within `ELECTION_PATIENCE` (a CI run once stalled there): the test is
    /// about the worker following a failover, not about how Redis decides one. Does
    /// nothing by default.
    fn take_over(&self, _killed: &str) {}
    /// Deletes every key under `prefix`.
    fn clean(&self, prefix: &str);
    /// What the set looks like now (its nodes and their roles) on one line, for a
    /// failing test.
    fn state(&self) -> String;
}

/// How long the set may take to promote a replica by itself.
const ELECTION_PATIENCE: Duration = Duration::from_secs(20);

/// What happened when, since the run began: the last line of a failing run's message,
/// which is what the end of a CI log shows.
struct Story {
    began: Instant,
    events: Vec<String>,
}

impl Story {
    fn new() -> Self {
        Self { began: Instant::now(), events: Vec::new() }
    }

    fn mark(&mut self, event: impl std::fmt::Display) {
        self.events.push(format!("{event} at {:.1} s", self.began.elapsed().as_secs_f64()));
    }

    /// A failing run's message: the worker's last lines, the set's state, then the story.
    fn failed(&self, what: &str, set: &dyn Replicated, worker: &super::WorkerProcess) -> String {
        format!("{what}; {}\nset: {}\nstory: {}", worker.tail(), set.state(), self.events.join(", "))
    }
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
    /// What a failing test says: the worker's last lines, the set, what happened when.
    pub story: String,
}

/// Publishes `TASKS` tasks, starts a worker, and kills the master once a quarter is done,
/// while a producer keeps publishing through the failover; then waits for every
/// acknowledged task's result (two minutes at most in all).
pub async fn failover(set: &dyn Replicated, replicas: u32) -> Failover {
    let mut story = Story::new();
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let port = set.master_in_sync(&prefix);
    story.mark(format_args!("master {port} in sync"));
    let url = set.url(&prefix, replicas);
    let app = App::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut ids, mut worker) = a_quarter_done(&app, &url, (TASKS, 0.02), &["-c", "16"], deadline).await;
    story.mark("a quarter done");

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
    story.mark(format_args!("{port} killed"));
    let mut forced = false;
    while !set.promoted(&port) {
        assert!(Instant::now() < deadline, "{}", story.failed("no replica was promoted", set, &worker));
        if !forced && killed_at.elapsed() > ELECTION_PATIENCE {
            story.mark(format_args!(
                "no election in {ELECTION_PATIENCE:?}: set state {}; replica told to take over",
                set.state()
            ));
            set.take_over(&port);
            forced = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let promoted_after = killed_at.elapsed();
    story.mark("a replica promoted");
    set.restart(&port);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    let acknowledged = producer.await.expect("producer");
    story.mark(format_args!("producer stopped after {} acknowledged", acknowledged.len()));
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
    story.mark(format_args!(
        "{finished} of {} done, the last {:.1} s earlier",
        ids.len(),
        moved_at.elapsed().as_secs_f64()
    ));
    let exited = worker.0.try_wait().expect("worker");
    assert!(exited.is_none(), "{}", story.failed(&format!("the worker exited ({exited:?})"), set, &worker));
    let story = story.failed(&format!("{} of {} lost", ids.len() - finished, ids.len()), set, &worker);
    worker.signal("-TERM");
    worker.wait(Duration::from_secs(30));
    // After the worker stopped: it writes its last task history as it stops.
    set.clean(&prefix);
    Failover { acknowledged: ids.len(), lost: ids.len() - finished, promoted_after, finished_after, story }
}

/// Both runs on one set, killing its master in turn: with `replicas=1` nothing
/// acknowledged is lost; with 0 the producer goes on through the failover.
pub async fn nothing_acknowledged_is_lost_with_replicas_1(set: &dyn Replicated) {
    let safe = failover(set, 1).await;
    eprintln!(
        "replicas=1: {} acknowledged, {} lost; promoted after {:?}, all done {:?} after the kill",
        safe.acknowledged, safe.lost, safe.promoted_after, safe.finished_after
    );
    assert!(safe.lost == 0, "with replicas=1 every acknowledged task runs: {}", safe.story);
    let fast = failover(set, 0).await;
    eprintln!(
        "replicas=0: {} acknowledged, {} lost; promoted after {:?}, done {:?} after the kill",
        fast.acknowledged, fast.lost, fast.promoted_after, fast.finished_after
    );
    assert!(fast.acknowledged > TASKS, "the producer went on through the failover");
}
