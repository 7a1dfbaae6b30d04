//! [`Conn`]: the connection every command of the native layout goes through, to one
//! server or to a Redis Cluster, and [`Servers`]: where further connections (blocking
//! reads, subscriptions, bulk writes) are opened.
//!
//! On a cluster each command goes to the master serving its keys' slot (redis-rs follows
//! `MOVED`/`ASK` through resharding and failovers). Invariants the layout keeps for it:
//! every script's keys share one hash tag, so no script touches two slots; multi-key
//! commands across slots (`MGET`, `UNLINK`) are split by redis-rs; `WAIT` goes to the
//! node that took the writes it waits for; classic `PUBLISH` reaches subscribers on any
//! node, so a subscription may sit on whichever node answers.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// One server's reconnecting multiplexed connection, or a cluster's.
#[derive(Clone)]
pub enum Conn {
    /// A single server (or the master Sentinel names).
    Server(ConnectionManager),
    /// A Redis Cluster: one multiplexed connection per node, commands routed by slot.
    Cluster(ClusterConnection),
}

impl From<ConnectionManager> for Conn {
    fn from(conn: ConnectionManager) -> Self {
        Self::Server(conn)
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Server(_) => "Conn::Server",
            Self::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

impl Conn {
    /// Whether commands are routed over a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// `WAIT wanted patience_ms` on the connection that wrote `key`: how many replicas
    /// have this connection's writes so far.
    pub async fn wait_for_replicas(&mut self, key: &str, wanted: u32, patience_ms: u64) -> RedisResult<u32> {
        let mut wait = redis::cmd("WAIT");
        wait.arg(wanted).arg(patience_ms);
        match self {
            Self::Server(conn) => wait.query_async(conn).await,
            Self::Cluster(conn) => {
                // Not redis-rs's default for WAIT (every node, the least count): only the
                // node serving `key` took these writes.
                let node = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                Ok(redis::from_redis_value(conn.route_command(wait, RoutingInfo::SingleNode(node)).await?)?)
            }
        }
    }

    /// Every key matching `pattern`, from every master (SCAN in pages: never blocks a
    /// server like KEYS).
    pub async fn scan(&mut self, pattern: &str) -> RedisResult<Vec<String>> {
        let page = |cursor: u64| {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000);
            scan
        };
        let mut found = Vec::new();
        match self {
            Self::Server(conn) => {
                let mut cursor = 0;
                loop {
                    let (next, keys): (u64, Vec<String>) = page(cursor).query_async(conn).await?;
                    found.extend(keys);
                    if next == 0 {
                        return Ok(found);
                    }
                    cursor = next;
                }
            }
            Self::Cluster(conn) => {
                for (host, port) in masters(conn).await? {
                    let mut cursor = 0;
                    loop {
                        let node = SingleNodeRoutingInfo::ByAddress { host: host.clone(), port };
                        let reply = conn.route_command(page(cursor), RoutingInfo::SingleNode(node)).await?;
                        let (next, keys): (u64, Vec<String>) = redis::from_redis_value(reply)?;
                        found.extend(keys);
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
                }
                Ok(found)
            }
        }
    }
}

/// The `(host, port)` of every master of the cluster.
async fn masters(conn: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
    let every = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
    addresses(conn.route_command(redis::cmd("PING"), every).await?)
}

/// The node addresses of a reply routed to several nodes (a map keyed by `host:port`).
fn addresses(reply: Value) -> RedisResult<Vec<(String, u16)>> {
    let Value::Map(by_node) = reply else {
        return Err(redis::RedisError::from((redis::ErrorKind::Client, "a cluster reply without node addresses")));
    };
    let mut found = Vec::new();
    for (address, _) in by_node {
        let address: String = redis::from_redis_value(address)?;
        if let Some((host, port)) = address.rsplit_once(':') {
            if let Ok(port) = port.parse() {
                found.push((host.to_owned(), port));
            }
        }
    }
    Ok(found)
}

/// Where connections besides the shared [`Conn`] are opened.
#[derive(Debug, Clone)]
pub(crate) struct Servers {
    /// The server, or every node of the cluster known when the broker connected, any of
    /// which relays every `PUBLISH` to its subscribers. Never empty.
    nodes: Vec<redis::Client>,
    /// On a cluster: for routed connections.
    cluster: Option<ClusterClient>,
}

impl Servers {
    /// One server.
    pub(crate) fn one(client: redis::Client) -> Self {
        Self { nodes: vec![client], cluster: None }
    }

    /// A cluster and its nodes.
    pub(crate) fn cluster(client: ClusterClient, nodes: Vec<redis::Client>) -> Self {
        Self { nodes, cluster: Some(client) }
    }

    /// A connection of its own (not shared with the hot path), whose replies may take up
    /// to `patience` (a blocking read's timeout plus a margin).
    pub(crate) async fn open(&self, patience: Option<Duration>) -> RedisResult<Conn> {
        if let Some(client) = &self.cluster {
            let mut config = redis::cluster::ClusterConfig::new();
            if let Some(patience) = patience {
                config = config.set_response_timeout(patience);
            }
            return Ok(Conn::Cluster(client.get_async_connection_with_config(config).await?));
        }
        let Some(client) = self.nodes.first() else {
            return Err(redis::RedisError::from((redis::ErrorKind::Client, "no Redis server to connect to")));
        };
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(patience);
        Ok(Conn::Server(ConnectionManager::new_with_config(client.clone(), config).await?))
    }

    /// The clients a subscription may be opened on, in the order to try them.
    pub(crate) fn subscribers(&self) -> &[redis::Client] {
        &self.nodes
    }
}

/// Every node of the cluster `conn` reaches, masters and replicas, as clients with the
/// settings (credentials, timeouts) of `seed`.
pub(crate) async fn nodes(conn: &mut ClusterConnection, seed: &redis::Client) -> RedisResult<Vec<redis::Client>> {
    let every = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllNodes, None));
    let mut clients = Vec::new();
    for (host, port) in addresses(conn.route_command(redis::cmd("PING"), every).await?)? {
        let info = seed.get_connection_info().clone().set_addr(redis::ConnectionAddr::Tcp(host, port));
        clients.push(redis::Client::open(info)?);
    }
    Ok(clients)
}
