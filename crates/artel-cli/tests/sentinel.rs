//! Redis Sentinel: a worker draining 2,000 tasks through `redis+sentinel://` while the
//! master is killed follows the failover without a restart, and with `?replicas=1`
//! every task published ends with its result: nothing acknowledged is lost.
//!
//! Runs on the loopback set `scripts/test` starts (`ARTEL_SENTINELS`, two nodes, three
//! sentinels); the killed node is started again from its file once the replica is
//! promoted, and comes back as its replica.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use artel::{App, Signature, State};
use serde_json::json;
use support::WorkerProcess;

const TASKS: usize = 2_000;

struct Set {
    sentinels: String,
    master: String,
    dir: String,
}

fn set() -> Option<Set> {
    let (Ok(sentinels), Ok(master), Ok(dir)) =
        (std::env::var("ARTEL_SENTINELS"), std::env::var("ARTEL_SENTINEL_MASTER"), std::env::var("ARTEL_SENTINEL_DIR"))
    else {
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "the Sentinel set is required");
        eprintln!("skipped: no ARTEL_SENTINELS (scripts/test starts a Sentinel set)");
        return None;
    };
    Some(Set { sentinels, master, dir })
}

fn redis_cli(port: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-p", port]).args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Set {
    /// The master's port, as the first sentinel says.
    fn master_port(&self) -> String {
        let sentinel = self.sentinels.split(',').next().and_then(|s| s.rsplit_once(':')).map_or("26390", |(_, p)| p);
        let answer = redis_cli(sentinel, &["sentinel", "get-master-addr-by-name", &self.master]);
        answer.lines().nth(1).expect("the sentinels name a master").trim().to_owned()
    }

    /// Waits until the master has a replica in sync (after an earlier run's failover the
    /// returned node needs a moment).
    fn wait_for_replica(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let port = self.master_port();
            let info = redis_cli(&port, &["info", "replication"]);
            if info.contains("role:master") && info.contains("state=online") {
                return port;
            }
            assert!(Instant::now() < deadline, "no replica in sync with the master on {port}: {info}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// What one failover cost.
struct Failover {
    /// Publishes the broker acknowledged.
    acknowledged: usize,
    /// Of those, tasks that never got a result.
    lost: usize,
    promoted_after: Duration,
    finished_after: Duration,
}

/// Publishes `TASKS` tasks, starts a worker, and kills the master once a quarter is done,
/// while a producer keeps publishing through the failover; then waits for every
/// acknowledged task's result (a minute at most).
async fn failover(set: &Set, replicas: u32) -> Failover {
    let port = set.wait_for_replica();
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let url = format!(
        "redis+sentinel://{}/{}/0?prefix={prefix}&replicas={replicas}&poll_ms=10&lease_ms=3000",
        set.sentinels, set.master
    );
    let app = App::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
    let task = || Signature::new("sleep").with_args(vec![json!(0.02)]);
    let mut ids = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        ids.push(app.send(task()).await.expect("published"));
    }
    let mut worker = WorkerProcess::start(&url, &["-c", "16"]);
    let done = |states: &[Option<artel::TaskResult>]| {
        states.iter().filter(|r| r.as_ref().is_some_and(|r| r.status == State::Success)).count()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while done(&app.backend().results().get_many(&ids).await.expect("read")) < TASKS / 4 {
        assert!(Instant::now() < deadline, "the worker did not get going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

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
    while set.master_port() == port {
        assert!(Instant::now() < deadline, "the sentinels did not promote the replica");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let promoted_after = killed_at.elapsed();
    // The killed node comes back, and the sentinels make it the new master's replica.
    let conf = format!("{}/node-{port}.conf", set.dir);
    let restarted = Command::new("redis-server").arg(&conf).stdout(Stdio::null()).status().expect("restart");
    assert!(restarted.success(), "starting {conf} again");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.cancel();
    let acknowledged = producer.await.expect("producer");
    ids.extend(acknowledged);

    // Done when all are, or when nothing moved for well longer than leases take to lapse
    // and the worker's reconnect backoff (on a loaded CI machine, over 10 s).
    let (mut finished, mut moved_at) = (0, Instant::now());
    while finished < ids.len() && Instant::now() < deadline && moved_at.elapsed() < Duration::from_secs(25) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(states) = app.backend().results().get_many(&ids).await {
            let now = done(&states);
            if now > finished {
                (finished, moved_at) = (now, Instant::now());
            }
        }
    }
    assert!(worker.0.try_wait().expect("worker").is_none(), "the same worker, never restarted");
    worker.signal("-TERM");
    worker.wait(Duration::from_secs(30));
    // After the worker stopped: it writes its last task history as it stops.
    let master = set.master_port();
    let script = format!("redis-cli -p {master} --scan --pattern '{prefix}:*' | xargs -r redis-cli -p {master} del");
    let _ = Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).status();
    Failover {
        acknowledged: ids.len(),
        lost: ids.len() - finished,
        promoted_after,
        finished_after: killed_at.elapsed(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_follows_failovers_and_with_replicas_1_nothing_acknowledged_is_lost() {
    let Some(set) = set() else { return };
    // One test: both runs kill the same set's master in turn.
    let safe = failover(&set, 1).await;
    eprintln!(
        "replicas=1: {} acknowledged, {} lost; promoted after {:?}, all done {:?} after the kill",
        safe.acknowledged, safe.lost, safe.promoted_after, safe.finished_after
    );
    assert_eq!(safe.lost, 0, "with replicas=1 every acknowledged task runs");
    let fast = failover(&set, 0).await;
    eprintln!(
        "replicas=0: {} acknowledged, {} lost; promoted after {:?}, done {:?} after the kill",
        fast.acknowledged, fast.lost, fast.promoted_after, fast.finished_after
    );
    assert!(fast.acknowledged > TASKS, "the producer went on through the failover");
}
