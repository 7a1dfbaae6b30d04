//! [`PostgresBroker`]: publishing (also inside the caller's transaction), consuming
//! through the leased consumer, counting and purging.

use std::sync::Arc;

use artel_core::leased::LeasedConsumer;
use artel_core::{Backend, Broker, BrokerResult, Clock, Consumer, Message, Queues, SystemClock};
use async_trait::async_trait;
use sqlx::PgConnection;

use crate::shared::{PostgresConfig, Shared, pg_error};

/// A PostgreSQL broker and result backend; clones share the pool.
#[derive(Debug, Clone)]
pub struct PostgresBroker {
    pub(crate) shared: Arc<Shared>,
}

impl PostgresBroker {
    /// Connects to `url` (`postgres://user:password@host:5432/db`) with default settings,
    /// creating the schema and its tables on first use.
    pub async fn connect(url: &str) -> BrokerResult<Self> {
        Self::connect_with(url, PostgresConfig::default(), Arc::new(SystemClock)).await
    }

    /// Connects with explicit settings and clock.
    pub async fn connect_with(url: &str, config: PostgresConfig, clock: Arc<dyn Clock>) -> BrokerResult<Self> {
        Ok(Self { shared: Arc::new(Shared::open(url, config, clock).await?) })
    }

    /// This broker with what it offers: it is its own result store, chord counter and
    /// revocation log, counts queues, keeps dead letters, failed tasks, worker reports
    /// and a task history, carries remote control, and offers locks, unique task keys,
    /// shared rate limits and a shared cache.
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

    /// Drops this broker's schema with everything in it (queues, results, dead letters);
    /// for scratch namespaces such as benchmarks.
    pub async fn delete_namespace(&self) -> BrokerResult<()> {
        let schema = &self.shared.config.schema;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&self.shared.pool)
            .await
            .map_err(|e| pg_error(&format!("dropping schema {schema}"), e))?;
        Ok(())
    }

    /// Publishes `messages` to `queue` inside the caller's transaction (`conn` is
    /// `&mut *tx` of a `sqlx::Transaction`): workers see them when it commits, and a
    /// rollback leaves nothing behind. The caller's connection must use this broker's
    /// database; the schema is named explicitly.
    pub async fn publish_in(&self, conn: &mut PgConnection, queue: &str, messages: &[Message]) -> BrokerResult<()> {
        let schema = &self.shared.config.schema;
        sqlx::query(&format!("SET LOCAL search_path TO {schema}"))
            .execute(&mut *conn)
            .await
            .map_err(|e| pg_error("choosing artel's schema in the transaction", e))?;
        // Its own NOTIFY, sent at the caller's commit: an announcement now could come first.
        self.insert(conn, queue, messages, true).await
    }

    /// Inserts `messages` in one statement on `conn`, notifying their publish in it when
    /// `notify` (else the caller has it announced after the commit).
    pub(crate) async fn insert<'c>(
        &self,
        conn: impl sqlx::PgExecutor<'c>,
        queue: &str,
        messages: &[Message],
        notify: bool,
    ) -> BrokerResult<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let now = self.shared.now_ms();
        let mut priorities = Vec::with_capacity(messages.len());
        let mut visible = Vec::with_capacity(messages.len());
        let mut ids = Vec::with_capacity(messages.len());
        let mut envelopes = Vec::with_capacity(messages.len());
        let mut groups = Vec::with_capacity(messages.len());
        for m in messages {
            groups.push(m.fair_group().unwrap_or_default().to_owned());
            priorities.push(i16::from(m.properties.priority.min(9)));
            visible.push(m.headers.eta.map_or(now, |eta| eta.timestamp_millis().max(now)));
            ids.push(m.headers.id.clone());
            envelopes.push(m.to_envelope());
        }
        sqlx::query(include_str!("../queries/message/insert.sql"))
            .bind(queue)
            .bind(priorities)
            .bind(visible)
            .bind(ids)
            .bind(envelopes)
            .bind(notify.then_some(self.shared.published_channel.as_str()))
            .bind(groups)
            .execute(conn)
            .await
            .map_err(|e| pg_error("publishing messages", e))?;
        Ok(())
    }
}

#[async_trait]
impl Broker for PostgresBroker {
    fn store_identity(&self) -> Option<usize> {
        Some(Arc::as_ptr(&self.shared) as usize)
    }

    async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()> {
        // One statement committed on its own: one round trip, with its NOTIFY in it or
        // one following its commit (see `start_publish`).
        let (notify, in_flight) = self.shared.start_publish();
        self.insert(&self.shared.pool, queue, messages, notify).await?;
        drop(in_flight);
        if !notify {
            self.shared.announce_publish();
        }
        Ok(())
    }

    async fn consume(&self, queues: &Queues, prefetch: usize) -> BrokerResult<Box<dyn Consumer>> {
        Ok(Box::new(LeasedConsumer::open(self.shared.clone(), queues.clone(), prefetch).await?))
    }

    async fn len(&self, queue: &str) -> BrokerResult<u64> {
        let count: i64 = sqlx::query_scalar(include_str!("../queries/message/count_ready.sql"))
            .bind(queue)
            .bind(self.shared.now_ms())
            .fetch_one(&self.shared.pool)
            .await
            .map_err(|e| pg_error("counting a queue", e))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn purge(&self, queue: &str) -> BrokerResult<u64> {
        let done = sqlx::query(include_str!("../queries/message/purge.sql"))
            .bind(queue)
            .bind(self.shared.now_ms())
            .execute(&self.shared.pool)
            .await
            .map_err(|e| pg_error("purging a queue", e))?;
        Ok(done.rows_affected())
    }
}
