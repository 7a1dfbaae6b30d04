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

use support::failover::{Replicated, has_replica_in_sync, nothing_acknowledged_is_lost_with_replicas_1, redis_cli};

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

impl Set {
    /// The first sentinel's port.
    fn sentinel(&self) -> &str {
        self.sentinels.split(',').next().and_then(|s| s.rsplit_once(':')).map_or("26390", |(_, p)| p)
    }

    /// The master's port, as the first sentinel says.
    fn master_port(&self) -> String {
        let answer = redis_cli(self.sentinel(), &["sentinel", "get-master-addr-by-name", &self.master]);
        answer.lines().nth(1).expect("the sentinels name a master").trim().to_owned()
    }
}

impl Replicated for Set {
    fn url(&self, prefix: &str, replicas: u32) -> String {
        format!(
            "redis+sentinel://{}/{}/0?prefix={prefix}&replicas={replicas}&poll_ms=10&lease_ms=3000",
            self.sentinels, self.master
        )
    }

    /// After an earlier run's failover the returned node needs a moment; a node an
    /// earlier run left down (it failed before restarting it) is started again.
    fn master_in_sync(&self, _prefix: &str) -> String {
        let nodes = std::fs::read_dir(&self.dir).expect("the Sentinel set's directory");
        let ports: Vec<String> = nodes
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                Some(name.strip_prefix("node-")?.strip_suffix(".conf")?.to_owned())
            })
            .collect();
        for port in &ports {
            if !redis_cli(port, &["ping"]).contains("PONG") {
                self.restart(port);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let port = self.master_port();
            if has_replica_in_sync(&port) {
                return port;
            }
            assert!(Instant::now() < deadline, "no replica in sync with the master on {port}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn promoted(&self, port: &str) -> bool {
        self.master_port() != port
    }

    /// `SENTINEL FAILOVER`: the first sentinel promotes the replica without asking the
    /// others.
    fn take_over(&self, _killed: &str) {
        redis_cli(self.sentinel(), &["sentinel", "failover", &self.master]);
    }

    fn restart(&self, port: &str) {
        let conf = format!("{}/node-{port}.conf", self.dir);
        let restarted = Command::new("redis-server").arg(&conf).stdout(Stdio::null()).status().expect("restart");
        assert!(restarted.success(), "starting {conf} again");
    }

    fn clean(&self, prefix: &str) {
        let master = self.master_port();
        let script =
            format!("redis-cli -p {master} --scan --pattern '{prefix}:*' | xargs -r redis-cli -p {master} del");
        let _ = Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).status();
    }

    fn state(&self) -> String {
        let port = self.master_port();
        let replication = redis_cli(&port, &["info", "replication"]);
        format!("master on {port}: {}", replication.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_follows_failovers_and_with_replicas_1_nothing_acknowledged_is_lost() {
    let Some(set) = set() else { return };
    nothing_acknowledged_is_lost_with_replicas_1(&set).await;
}
