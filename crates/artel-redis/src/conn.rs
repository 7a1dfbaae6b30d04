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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
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
    Cluster(Healing),
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
            Self::Cluster(conn) => Box::pin(conn.run(move |mut c| async move { c.req_packed_command(cmd).await })),
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
            Self::Cluster(conn) => {
                Box::pin(conn.run(move |mut c| async move { c.req_packed_commands(pipeline, offset, count).await }))
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(conn) => conn.get_db(),
            Self::Cluster(_) => 0,
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
                let reply = conn.run(|mut c| async move { c.route_command(wait, RoutingInfo::SingleNode(node)).await });
                Ok(redis::from_redis_value(reply.await?)?)
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
                let every = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let masters = addresses(
                    conn.run(|mut c| async move { c.route_command(redis::cmd("PING"), every).await }).await?,
                )?;
                for (host, port) in masters {
                    let mut cursor = 0;
                    loop {
                        let node =
                            RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host: host.clone(), port });
                        let scan = page(cursor);
                        let reply = conn.run(|mut c| async move { c.route_command(scan, node).await }).await?;
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

/// A cluster connection replaced by a fresh one after it fails to answer. redis-rs
/// 1.8's cluster connection can stay wedged for good (every request times out, on every
/// node) once a node dies while requests are in flight, where a new connection finds
/// the promoted replica at once; so a timeout or a dropped connection starts one
/// reconnection in the background, and requests go to the new connection once it is up.
#[derive(Clone)]
pub struct Healing {
    client: Arc<ClusterClient>,
    current: Arc<Mutex<ClusterConnection>>,
    reconnecting: Arc<AtomicBool>,
}

impl std::fmt::Debug for Healing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Healing").field("reconnecting", &self.reconnecting.load(Ordering::Relaxed)).finish()
    }
}

/// Longest wait for a fresh cluster connection.
const RECONNECT_PATIENCE: Duration = Duration::from_secs(5);

impl Healing {
    /// Connects with `client`, whose response timeout says when a node is taken for gone.
    pub(crate) async fn open(client: ClusterClient) -> RedisResult<Self> {
        let conn = client.get_async_connection().await?;
        Ok(Self { client: Arc::new(client), current: Arc::new(Mutex::new(conn)), reconnecting: Arc::default() })
    }

    fn connection(&self) -> ClusterConnection {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `request` on the current connection; a failure that says the connection,
    /// not the request, is at fault starts a reconnection.
    async fn run<T, F, Fut>(&self, request: F) -> RedisResult<T>
    where
        F: FnOnce(ClusterConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let outcome = request(self.connection()).await;
        if let Err(e) = &outcome {
            if e.is_timeout() || e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
                self.reconnect();
            }
        }
        outcome
    }

    fn reconnect(&self) {
        if self.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(RECONNECT_PATIENCE, this.client.get_async_connection()).await {
                Ok(Ok(conn)) => {
                    *this.current.lock().unwrap_or_else(|e| e.into_inner()) = conn;
                    tracing::info!("reconnected to the Redis Cluster");
                }
                Ok(Err(error)) => {
                    tracing::debug!(%error, "reconnecting to the Redis Cluster failed; trying on the next failure")
                }
                Err(_) => tracing::debug!("reconnecting to the Redis Cluster timed out; trying on the next failure"),
            }
            this.reconnecting.store(false, Ordering::Release);
        });
    }
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
    /// On a cluster: the seed nodes' URLs, for routed connections.
    cluster: Option<Vec<String>>,
}

impl Servers {
    /// One server.
    pub(crate) fn one(client: redis::Client) -> Self {
        Self { nodes: vec![client], cluster: None }
    }

    /// A cluster and its nodes.
    pub(crate) fn cluster(seeds: Vec<String>, nodes: Vec<redis::Client>) -> Self {
        Self { nodes, cluster: Some(seeds) }
    }

    /// A connection of its own (not shared with the hot path), whose replies may take up
    /// to `patience` (a blocking read's timeout plus a margin).
    pub(crate) async fn open(&self, patience: Option<Duration>) -> RedisResult<Conn> {
        if let Some(seeds) = &self.cluster {
            let client = crate::cluster::client(seeds, patience.unwrap_or(PATIENCE))?;
            return Ok(Conn::Cluster(Healing::open(client).await?));
        }
        let Some(client) = self.nodes.first() else {
            return Err(redis::RedisError::from((redis::ErrorKind::Client, "no Redis server to connect to")));
        };
        let config = crate::toolkit::manager_config().set_response_timeout(patience);
        Ok(Conn::Server(ConnectionManager::new_with_config(client.clone(), config).await?))
    }

    /// The clients a subscription may be opened on, in the order to try them.
    pub(crate) fn subscribers(&self) -> &[redis::Client] {
        &self.nodes
    }
}

/// How long a server or cluster node may take to answer a request on a shared connection
/// before the request fails (and a cluster connection is taken for wedged, [`Healing`]):
/// well above a script's run, a publish's `WAIT` and the queueing of a burst of requests
/// on one multiplexed connection. redis-rs's default, 500 ms, failed thousands of
/// `artel map -c 10000` publishes on a busy machine, many of them enqueued all the same.
pub(crate) const PATIENCE: Duration = Duration::from_secs(3);

/// Every node of the cluster `conn` reaches, masters and replicas, as clients with the
/// settings (credentials, timeouts) of `seed`.
pub(crate) async fn nodes(conn: &Healing, seed: &redis::Client) -> RedisResult<Vec<redis::Client>> {
    let every = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllNodes, None));
    let reply = conn.run(|mut c| async move { c.route_command(redis::cmd("PING"), every).await }).await?;
    let mut clients = Vec::new();
    for (host, port) in addresses(reply)? {
        let info = seed.get_connection_info().clone().set_addr(redis::ConnectionAddr::Tcp(host, port));
        clients.push(redis::Client::open(info)?);
    }
    Ok(clients)
}
