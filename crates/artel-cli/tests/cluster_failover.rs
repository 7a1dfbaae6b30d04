//! Redis Cluster: a worker draining 2,000 tasks through `redis+cluster://` while the
//! master holding their queue is killed follows the failover without a restart, and with
//! `?replicas=1` every task published ends with its result: nothing acknowledged is lost.
//!
//! Runs on the cluster `scripts/test` starts for it (`ARTEL_FAILOVER_CLUSTER`, 3 masters
//! and 3 replicas, `cluster-node-timeout 1000`); the killed node is started again from
//! its file once its replica is promoted, and comes back as that replica's replica.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::failover::{Replicated, has_replica_in_sync, nothing_acknowledged_is_lost_with_replicas_1, redis_cli};

struct Cluster {
    /// `host:port` of the seed nodes.
    seeds: String,
    dir: String,
}

fn cluster() -> Option<Cluster> {
    let (Ok(seeds), Ok(dir)) = (std::env::var("ARTEL_FAILOVER_CLUSTER"), std::env::var("ARTEL_FAILOVER_CLUSTER_DIR"))
    else {
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "the failover cluster is required");
        eprintln!("skipped: no ARTEL_FAILOVER_CLUSTER (scripts/test starts one)");
        return None;
    };
    Some(Cluster { seeds, dir })
}

/// Every node's port: six consecutive ports from the first seed's.
fn ports(seeds: &str) -> Vec<String> {
    let first: u16 = seeds
        .split(',')
        .next()
        .and_then(|s| s.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .expect("a seed port");
    (first..first + 6).map(|p| p.to_string()).collect()
}

/// One line of `CLUSTER NODES`.
struct Node {
    id: String,
    port: String,
    flags: String,
    /// The id of the master it replicates (`-` for a master).
    master: String,
    epoch: String,
    link: String,
    /// Slot ranges served, `from-to` or one slot.
    slots: Vec<String>,
}

impl Node {
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = fields.get(1)?.split('@').next()?.rsplit_once(':')?.1.to_owned();
        let field = |i: usize| fields.get(i).map(|f| (*f).to_owned());
        Some(Self {
            id: field(0)?,
            port,
            flags: field(2)?,
            master: field(3)?,
            epoch: field(6)?,
            link: field(7)?,
            slots: fields.iter().skip(8).map(|f| (*f).to_owned()).collect(),
        })
    }

    fn live_master(&self) -> bool {
        self.flags.contains("master") && !self.flags.contains("fail")
    }

    fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|range| {
            let (from, to) = range.split_once('-').unwrap_or((range, range));
            matches!((from.parse::<u16>(), to.parse::<u16>()), (Ok(f), Ok(t)) if (f..=t).contains(&slot))
        })
    }
}

impl Cluster {
    /// `CLUSTER NODES` from the first node that answers.
    fn nodes(&self) -> Vec<Node> {
        let listed = ports(&self.seeds)
            .iter()
            .map(|p| redis_cli(p, &["cluster", "nodes"]))
            .find(|n| !n.is_empty())
            .expect("a live node");
        listed.lines().filter_map(Node::parse).collect()
    }

    /// The ports of the live masters.
    fn masters(&self) -> Vec<String> {
        self.nodes().into_iter().filter(Node::live_master).map(|node| node.port).collect()
    }

    /// The port of the master serving the slot of the default queue's keys.
    fn queue_master(&self) -> Option<String> {
        let first = ports(&self.seeds).into_iter().find(|p| !redis_cli(p, &["ping"]).is_empty())?;
        let slot: u16 = redis_cli(&first, &["cluster", "keyslot", "{celery}"]).trim().parse().ok()?;
        self.nodes().into_iter().find(|node| node.live_master() && node.serves(slot)).map(|node| node.port)
    }
}

impl Replicated for Cluster {
    fn url(&self, prefix: &str, replicas: u32) -> String {
        format!("redis+cluster://{}?prefix={prefix}&replicas={replicas}&poll_ms=10&lease_ms=3000", self.seeds)
    }

    /// Every master with a replica in sync (results land on all three), a node an
    /// earlier run left down started again, and the restarted node given time to sync.
    fn master_in_sync(&self, _prefix: &str) -> String {
        for port in ports(&self.seeds) {
            if redis_cli(&port, &["ping"]).is_empty() {
                self.restart(&port);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let masters = self.masters();
            if masters.len() == 3 && masters.iter().all(|p| has_replica_in_sync(p)) {
                if let Some(port) = self.queue_master() {
                    return port;
                }
            }
            assert!(Instant::now() < deadline, "not every master has a replica in sync: {}", self.state());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn promoted(&self, port: &str) -> bool {
        self.queue_master().is_some_and(|master| master != port)
    }

    fn restart(&self, port: &str) {
        let conf = format!("{}/node-{port}.conf", self.dir);
        let restarted = Command::new("redis-server").arg(&conf).stdout(Stdio::null()).status().expect("restart");
        assert!(restarted.success(), "starting {conf} again");
    }

    fn clean(&self, prefix: &str) {
        // One DEL per key (one may not span slots), all through one redis-cli per node
        // reading them from its input; replicas refuse them harmlessly. Again until no
        // node lists a key: a node still syncing after the failover may.
        let left = || {
            ports(&self.seeds)
                .iter()
                .map(|p| redis_cli(p, &["--scan", "--pattern", &format!("{prefix}:*")]).lines().count())
                .sum::<usize>()
        };
        for _ in 0..10 {
            for port in ports(&self.seeds) {
                let script = format!(
                    "redis-cli -p {port} --scan --pattern '{prefix}:*' | sed 's/^/DEL /' | redis-cli -p {port}"
                );
                let _ = Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).stderr(Stdio::null()).status();
            }
            if left() == 0 {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        eprintln!("{} keys of {prefix} left on the failover cluster", left());
    }

    /// `CLUSTER FAILOVER TAKEOVER` on the killed master's replica.
    fn take_over(&self, killed: &str) {
        let nodes = self.nodes();
        let Some(killed) = nodes.iter().find(|node| node.port == killed) else { return };
        for replica in nodes.iter().filter(|node| node.master == killed.id) {
            eprintln!("{}", redis_cli(&replica.port, &["cluster", "failover", "takeover"]));
        }
    }

    /// Each node on one line's part: port, flags, epoch, link and slots, replicas
    /// naming their master's port.
    fn state(&self) -> String {
        let nodes = self.nodes();
        let port_of = |id: &str| nodes.iter().find(|node| node.id == id).map(|node| node.port.as_str());
        nodes
            .iter()
            .map(|node| {
                let of = port_of(&node.master).map(|m| format!(" of {m}")).unwrap_or_default();
                format!("{} {}{of} e{} {} {}", node.port, node.flags, node.epoch, node.link, node.slots.join(" "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_follows_a_cluster_failover_and_with_replicas_1_nothing_acknowledged_is_lost() {
    let Some(cluster) = cluster() else { return };
    nothing_acknowledged_is_lost_with_replicas_1(&cluster).await;
}
