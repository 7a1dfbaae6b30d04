//! [`RedisBroker`]: publishing and inspecting queues; consuming is in `lease.rs`.

use std::sync::Arc;

use artel_core::leased::LeasedConsumer;
use artel_core::{Backend, Broker, BrokerResult, Clock, Consumer, Message, Queues, SystemClock};
use async_trait::async_trait;

use crate::completer::{CompletionReplicas, Completions};
use crate::conn::{Conn, Servers};
use crate::lease::CompleteScript;
use crate::scripts::Scripts;
use crate::shared::{RedisConfig, Shared};
use crate::toolkit::redis_error;

/// Broker and result backend on a Redis server; clones share connections.
#[derive(Debug, Clone)]
pub struct RedisBroker {
    pub(crate) shared: Arc<Shared>,
}

impl RedisBroker {
    /// Connects to `url` (`redis://host:port/db`, `rediss://` for TLS,
    /// `redis+cluster://host:port,host:port` for a Redis Cluster) with default settings.
    pub async fn connect(url: &str) -> BrokerResult<Self> {
        Self::connect_with(url, RedisConfig::default(), Arc::new(SystemClock)).await
    }

    /// Connects with explicit settings and clock.
    pub async fn connect_with(url: &str, config: RedisConfig, clock: Arc<dyn Clock>) -> BrokerResult<Self> {
        let scripts = Scripts::load();
        let completion_replicas = Arc::new(CompletionReplicas::new(config.replicas, clock.clone()));
        let (conn, servers, follower, completions) = match url.starts_with(crate::cluster::SCHEME) {
            true => {
                let (conn, servers) = crate::cluster::open(url, &config.tls).await?;
                (conn, servers, None, None)
            }
            false => {
                let opened = crate::toolkit::open(url, &config.tls, config.sentinel.as_ref()).await?;
                let writer = CompleteScript(scripts.complete.clone());
                // Ends when the last clone of this broker is dropped (its sender with it).
                let completions = Completions::start(opened.client.clone(), writer, completion_replicas.clone());
                (Conn::Server(opened.conn), Servers::one(opened.client), opened.follower, Some(completions))
            }
        };
        let shared = Shared {
            servers,
            conn,
            _follower: follower,
            completion_replicas,
            completions,
            scripts,
            config,
            clock,
            bulk: Default::default(),
            registered: Default::default(),
            queue_keys: Default::default(),
        };
        Ok(Self { shared: Arc::new(shared) })
    }
}

impl RedisBroker {
    /// This broker with everything it offers: it is its own result store, chord counter
    /// and revocation log, counts queues, keeps dead letters, worker reports, failed
    /// tasks and a task history, carries remote control, and offers locks, unique task
    /// keys, shared rate limits and a shared cache.
    pub fn backend(&self) -> Backend {
        Backend::new(Arc::new(self.clone()), self.clone())
            .administered(self.clone())
            .with_control_board(Arc::new(self.clone()))
            .with_failed(Arc::new(self.clone()))
            .with_history(Arc::new(self.clone()))
            .with_locks(Arc::new(self.lock_server()))
            .with_unique(Arc::new(self.lock_server()))
            .with_rate_limits(Arc::new(self.lock_server()))
            .with_cache(Arc::new(self.cache_store()))
    }

    /// Deletes every key under this broker's prefix (queues, results, dead letters);
    /// for scratch namespaces such as benchmarks. Returns how many keys went.
    pub async fn delete_namespace(&self) -> BrokerResult<u64> {
        let pattern = format!("{}:*", self.shared.config.prefix);
        crate::toolkit::delete_matching(&mut self.shared.conn.clone(), &pattern).await
    }
}

#[async_trait]
impl Broker for RedisBroker {
    fn store_identity(&self) -> Option<usize> {
        Some(std::sync::Arc::as_ptr(&self.shared) as usize)
    }

    async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()> {
        if messages.is_empty() {
            return Ok(());
        }
        self.shared.register([queue]).await?;
        let keys = self.shared.keys(queue);
        let now = self.shared.now_ms();
        let mut invocation = self.shared.scripts.enqueue.prepare_invoke();
        invocation
            .key(&keys.pending)
            .key(&keys.scheduled)
            .key(&keys.messages)
            .key(&keys.priorities)
            .key(&keys.sequence)
            .key(&keys.signal)
            .key(&keys.turns)
            .key(&keys.clock)
            .arg(now);
        for m in messages {
            let visible_at = m.headers.eta.map_or(now, |eta| eta.timestamp_millis());
            // Each publish gets its own id: the same task id is published again by retries,
            // and settling the old copy must never touch the new one.
            let message_id = uuid::Uuid::new_v4().to_string();
            let group = m.fair_group().unwrap_or_default();
            invocation
                .arg(message_id)
                .arg(m.properties.priority.min(9))
                .arg(visible_at)
                .arg(m.to_envelope())
                .arg(group);
        }
        let mut conn = self.shared.conn.clone();
        let _: i64 = invocation.invoke_async(&mut conn).await.map_err(|e| redis_error("publishing messages", e))?;
        self.shared.replicated(&mut conn, &keys.pending, "publish").await
    }

    async fn consume(&self, queues: &Queues, prefetch: usize) -> BrokerResult<Box<dyn Consumer>> {
        self.shared.register(queues.iter().map(String::as_str)).await?;
        Ok(Box::new(LeasedConsumer::open(self.shared.clone(), queues.clone(), prefetch).await?))
    }

    async fn len(&self, queue: &str) -> BrokerResult<u64> {
        let keys = self.shared.keys(queue);
        let now = self.shared.now_ms();
        let mut conn = self.shared.conn.clone();
        let (pending, due): (u64, u64) = redis::pipe()
            .zcard(&keys.pending)
            .zcount(&keys.scheduled, "-inf", now)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("counting a queue", e))?;
        Ok(pending + due)
    }

    async fn purge(&self, queue: &str) -> BrokerResult<u64> {
        let keys = self.shared.keys(queue);
        let mut conn = self.shared.conn.clone();
        self.shared
            .scripts
            .purge
            .key(&keys.pending)
            .key(&keys.scheduled)
            .key(&keys.messages)
            .key(&keys.priorities)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("purging a queue", e))
    }
}
