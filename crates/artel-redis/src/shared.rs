//! What a broker's clones share: connections, scripts, settings and clock. A leaf: the
//! broker, its lease store, result backend and admin all build on it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artel_core::{BrokerResult, Clock};
use redis::AsyncCommands;

use crate::completer::{CompletionReplicas, Completions};
use crate::conn::{Conn, Servers};

use crate::keys::{self, QueueKeys};
use crate::scripts::Scripts;
use crate::toolkit::redis_error;

/// Settings of a [`crate::RedisBroker`].
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Prefix of every key, so several apps (or tests) share one server.
    pub prefix: String,
    /// How long a claimed message stays hidden without a heartbeat.
    pub lease: Duration,
    /// Longest an idle consumer blocks before looking again (delayed messages and
    /// lapsed leases are picked up at least this often).
    pub idle_wait: Duration,
    /// How many tasks that failed for good are kept per queue for `artel failed`.
    pub failed_kept: u32,
    /// How many task records the task history keeps; the least recently updated go first.
    pub history_kept: u32,
    /// Certificate files for a `rediss://` URL.
    pub tls: artel_core::TlsFiles,
    /// The sentinels to ask for the master (the URL's host is then ignored).
    pub sentinel: Option<crate::sentinel::SentinelSet>,
    /// Replicas that must confirm each publish (`WAIT`) before it counts as done, and
    /// that each finished task's result and ack are given a chance to reach; 0: none.
    pub replicas: u32,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            prefix: "artel".to_owned(),
            lease: Duration::from_secs(30),
            idle_wait: Duration::from_millis(500),
            failed_kept: artel_core::FAILED_KEPT,
            history_kept: artel_core::HISTORY_KEPT,
            tls: Default::default(),
            sentinel: None,
            replicas: 0,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    /// Where connections of their own (blocking reads, subscriptions) are opened.
    pub(crate) servers: Servers,
    /// Multiplexed, reconnecting; never used for blocking commands.
    pub(crate) conn: Conn,
    pub(crate) scripts: Scripts,
    pub(crate) config: RedisConfig,
    pub(crate) clock: Arc<dyn Clock>,
    /// A connection of its own for bulk writes (task history), opened on first use, so
    /// their large requests never queue ahead of the hot path's small ones.
    pub(crate) bulk: tokio::sync::OnceCell<Conn>,
    /// Queues this process has added to the registry ([`keys::queues`]).
    pub(crate) registered: Mutex<HashSet<String>>,
    /// Each queue's key names, formatted once: twelve `format!`s per claim and per
    /// completion were 7% of a draining worker's CPU (BENCHMARKS, "Where the time goes").
    pub(crate) queue_keys: Mutex<HashMap<String, Arc<QueueKeys>>>,
    /// Keeps the connections on the Sentinel-named master, if there is one.
    pub(crate) _follower: Option<crate::sentinel::Follower>,
    /// How finished tasks' writes wait for replicas (shared with the completer).
    pub(crate) completion_replicas: Arc<CompletionReplicas>,
    /// Where consumers' completions go to be written in batches; none on a cluster,
    /// where a result and its ack go to different slots.
    pub(crate) completions: Option<Completions<crate::lease::Finished>>,
}

pub(crate) async fn wait_for_replicas(conn: &mut Conn, key: &str, wanted: u32, patience_ms: u64) -> BrokerResult<u32> {
    conn.wait_for_replicas(key, wanted, patience_ms).await.map_err(|e| redis_error("waiting for replicas", e))
}

/// The queues whose key names are kept formatted.
const KEYS_CACHED: usize = 1024;

/// Longest wait for replicas to confirm a publish (`WAIT`).
const PUBLISH_PATIENCE_MS: u64 = 1000;

impl Shared {
    /// Waits for `config.replicas` replicas to have this connection's writes so far to
    /// `key`'s server (`what`: a publish, a result); an error names how many confirmed.
    pub(crate) async fn replicated(&self, conn: &mut Conn, key: &str, what: &str) -> BrokerResult<()> {
        let wanted = self.config.replicas;
        if wanted == 0 {
            return Ok(());
        }
        let confirmed = wait_for_replicas(conn, key, wanted, PUBLISH_PATIENCE_MS).await?;
        if confirmed < wanted {
            return Err(artel_core::BrokerError::new(
                artel_core::BrokerErrorKind::Connection,
                format!(
                    "only {confirmed} of {wanted} replicas confirmed the {what} within {PUBLISH_PATIENCE_MS} ms (?replicas={wanted})"
                ),
            ));
        }
        Ok(())
    }

    /// Gives a finished task's result (stored under `key`) a moment to reach the replicas
    /// ([`CompletionReplicas`]).
    pub(crate) async fn completion_replicated(&self, conn: &mut Conn, key: &str) {
        self.completion_replicas.wait(conn, key).await;
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    pub(crate) fn keys(&self, queue: &str) -> Arc<QueueKeys> {
        let mut known = self.queue_keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(keys) = known.get(queue) {
            return keys.clone();
        }
        if known.len() >= KEYS_CACHED {
            // Queue names come from callers: bounded, whatever they send.
            known.clear();
        }
        let keys = Arc::new(QueueKeys::new(&self.config.prefix, queue));
        known.insert(queue.to_owned(), keys.clone());
        keys
    }

    /// The bulk connection ([`Shared::bulk`]).
    pub(crate) async fn bulk(&self) -> BrokerResult<Conn> {
        let conn = self
            .bulk
            .get_or_try_init(|| self.servers.open(None))
            .await
            .map_err(|e| redis_error("opening a second connection to Redis", e))?;
        Ok(conn.clone())
    }

    /// Adds `queues` to the registry that `artel queues` and the dashboard read, once per
    /// process and queue: listing queues then needs no SCAN of the keyspace.
    pub(crate) async fn register<'q>(&self, queues: impl IntoIterator<Item = &'q str>) -> BrokerResult<()> {
        let new: Vec<&str> = {
            let registered = self.registered.lock().unwrap_or_else(|e| e.into_inner());
            queues.into_iter().filter(|q| !registered.contains(*q)).collect()
        };
        if new.is_empty() {
            return Ok(());
        }
        let _: u64 = self
            .conn
            .clone()
            .sadd(keys::queues(&self.config.prefix), &new)
            .await
            .map_err(|e| redis_error("registering queues", e))?;
        self.registered.lock().unwrap_or_else(|e| e.into_inner()).extend(new.into_iter().map(str::to_owned));
        Ok(())
    }
}
