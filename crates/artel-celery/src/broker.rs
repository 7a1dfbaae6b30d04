//! [`CeleryRedis`]: publishing to and inspecting kombu's queue lists.

use std::sync::{Arc, Mutex};

use artel_core::leased::LeasedConsumer;
use artel_core::{Backend, Broker, BrokerError, BrokerErrorKind, BrokerResult, Consumer, Message, Queues, lock};
use artel_redis::completer::{CompletionReplicas, Completions};
use artel_redis::toolkit::{open, redis_error};
use async_trait::async_trait;

use crate::keys::Names;
use crate::lease::CompleteScript;
use crate::scripts::Scripts;
use crate::shared::{CeleryRedisConfig, Shared};
use crate::wire::Wire;

/// Broker and result backend in Celery's Redis layout; clones share connections.
#[derive(Debug, Clone)]
pub struct CeleryRedis {
    pub(crate) shared: Arc<Shared>,
    /// Where Celery's control broadcasts go when the broker is not this Redis (RabbitMQ
    /// with results here); `None`: this Redis's own pidbox channel.
    control: Option<Arc<dyn Wire>>,
}

impl CeleryRedis {
    /// Connects to `url` (`redis://host:port/db`, the database Celery's broker URL names).
    pub async fn connect(url: &str, config: CeleryRedisConfig) -> BrokerResult<Self> {
        let opened = open(url, &config.tls, config.sentinel.as_ref()).await?;
        let db = opened.client.get_connection_info().redis_settings().db();
        let names = Names { prefix: config.prefix.clone(), db };
        let scripts = Scripts::load();
        let writer = CompleteScript { script: scripts.complete.clone(), names: names.clone() };
        // Ends when the last clone of this connection is dropped (its sender with it).
        let completions = Completions::start(opened.client.clone(), writer, Arc::new(CompletionReplicas::none()));
        let shared = Shared {
            client: opened.client,
            conn: opened.conn.into(),
            scripts,
            names,
            config,
            declared: Mutex::default(),
            _follower: opened.follower,
            completions,
        };
        Ok(Self { shared: Arc::new(shared), control: None })
    }

    /// This backend with control broadcasts (a revoke) sent over `wire` instead, for a
    /// deployment whose broker is RabbitMQ and whose results are here.
    pub fn with_control(mut self, wire: Arc<dyn Wire>) -> Self {
        self.control = Some(wire);
        self
    }

    /// This connection with everything it offers: Celery's Redis layout is its own
    /// result store, chord counter and revocation log, counts queues and keeps dead
    /// letters and worker reports (Celery keeps no failed-task list), keeps the task
    /// history of artel workers, and offers locks, unique task keys, shared rate limits and
    /// a shared cache on its Redis server.
    pub fn backend(&self) -> Backend {
        Backend::new(Arc::new(self.clone()), self.clone())
            .administered(self.clone())
            .with_locks(Arc::new(self.lock_server()))
            .with_unique(Arc::new(self.lock_server()))
            .with_rate_limits(Arc::new(self.lock_server()))
            .with_cache(Arc::new(self.cache_store()))
            .with_history(Arc::new(self.history()))
    }

    /// The task history artel workers keep here (the dashboard's task lists), under this
    /// connection's prefix and `artel.celery` (keys Celery never reads, apart from a
    /// redis:// app's on the same server). Python workers' tasks are not in it.
    pub fn history(&self) -> artel_redis::RedisHistory {
        let conn = self.shared.conn.clone();
        let prefix = format!("{}artel.celery", self.shared.config.prefix);
        artel_redis::RedisHistory::new(&prefix, artel_core::HISTORY_KEPT, conn.clone(), conn)
    }

    /// Locks, fenced values and unique task keys on this Redis server, under this
    /// connection's prefix and `artel` (keys Celery never reads).
    pub fn lock_server(&self) -> artel_redis::RedisLocks {
        artel_redis::RedisLocks::new(self.shared.conn.clone(), &format!("{}artel", self.shared.config.prefix))
    }

    /// A cache on this Redis server, under this connection's prefix and `artel`.
    pub fn cache_store(&self) -> artel_redis::RedisCache {
        artel_redis::RedisCache::new(self.shared.conn.clone(), &format!("{}artel", self.shared.config.prefix))
    }

    /// The wire control broadcasts go over.
    pub(crate) fn control_wire(&self) -> Option<&Arc<dyn Wire>> {
        self.control.as_ref()
    }

    /// Deletes every key under this connection's prefix (kombu's `global_keyprefix`),
    /// for scratch namespaces such as tests and benchmarks; refuses an empty prefix.
    /// Returns how many keys went.
    pub async fn delete_prefix(&self) -> BrokerResult<u64> {
        let prefix = &self.shared.config.prefix;
        if prefix.is_empty() {
            return Err(BrokerError::new(BrokerErrorKind::Other, "refusing to delete every key: no prefix is set"));
        }
        artel_redis::toolkit::delete_matching(&mut self.shared.conn.clone(), &format!("{prefix}*")).await
    }
}

#[async_trait]
impl Broker for CeleryRedis {
    fn store_identity(&self) -> Option<usize> {
        Some(std::sync::Arc::as_ptr(&self.shared) as usize)
    }

    async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()> {
        let names = &self.shared.names;
        let mut pipe = redis::pipe();
        // Declare the queue once per connection, as kombu's producer does (its exchange is
        // named like it), so `artel queues` and Celery's tools see it before any worker.
        // Looked up before inserting: no allocation on the publishes after the first.
        let first = {
            let mut declared = lock(&self.shared.declared);
            !declared.contains(queue) && declared.insert(queue.to_owned())
        };
        if first {
            pipe.sadd(names.binding(queue), Names::binding_member(queue)).ignore();
        }
        for message in messages {
            // kombu restores a held message to the queue its routing key names.
            let envelope = if message.queue() == queue {
                message.to_envelope()
            } else {
                let mut routed = message.clone();
                routed.properties.delivery_info.routing_key = queue.to_owned();
                routed.to_envelope()
            };
            // kombu has no delayed delivery: a message with an ETA is delivered at once and
            // its consumer holds it until due.
            pipe.lpush(names.list(queue, message.properties.priority), envelope).ignore();
        }
        let mut conn = self.shared.conn.clone();
        let published = pipe.query_async::<()>(&mut conn).await.map_err(|e| redis_error("publishing messages", e));
        if published.is_err() && first {
            lock(&self.shared.declared).remove(queue);
        }
        published
    }

    async fn consume(&self, queues: &Queues, prefetch: usize) -> BrokerResult<Box<dyn Consumer>> {
        // Declare the queues as a Celery worker does, so producers routing through the
        // `celery` exchange find them.
        let mut pipe = redis::pipe();
        for queue in queues.iter() {
            pipe.sadd(self.shared.names.binding("celery"), Names::binding_member(queue)).ignore();
        }
        let mut conn = self.shared.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(|e| redis_error("declaring queues", e))?;
        Ok(Box::new(LeasedConsumer::open(self.shared.clone(), queues.clone(), prefetch).await?))
    }

    async fn len(&self, queue: &str) -> BrokerResult<u64> {
        let mut pipe = redis::pipe();
        for list in self.shared.names.lists(queue) {
            pipe.llen(list);
        }
        let mut conn = self.shared.conn.clone();
        let lengths: Vec<u64> = pipe.query_async(&mut conn).await.map_err(|e| redis_error("counting a queue", e))?;
        Ok(lengths.iter().sum())
    }

    async fn purge(&self, queue: &str) -> BrokerResult<u64> {
        let waiting = self.len(queue).await?;
        let mut conn = self.shared.conn.clone();
        redis::cmd("DEL")
            .arg(self.shared.names.lists(queue))
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| redis_error("purging a queue", e))?;
        Ok(waiting)
    }
}
