//! [`SqliteBroker`]: publishing, consuming and inspecting queues in one SQLite file.

use std::path::Path;
use std::sync::Arc;

use artel_core::leased::LeasedConsumer;
use artel_core::{Backend, Broker, BrokerResult, Clock, Consumer, Message, Queues, SystemClock};
use async_trait::async_trait;

use crate::db::Db;
use crate::queries::{self, NewMessage};
use crate::shared::{Shared, SqliteConfig};

/// Deletes the database file at `path` and what lives beside it: SQLite's `-wal` and
/// `-shm` files and the wake-up sockets' directory. For scratch databases; nothing may
/// have it open.
pub fn remove_database(path: impl AsRef<Path>) {
    let path = path.as_ref().display();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let _ = std::fs::remove_dir_all(format!("{path}.wake"));
}

/// Broker and result backend on one SQLite file; clones share one connection thread.
#[derive(Debug, Clone)]
pub struct SqliteBroker {
    pub(crate) shared: Arc<Shared>,
}

impl SqliteBroker {
    /// Opens (creating if needed) the database file at `path` with default timings.
    pub fn open(path: impl AsRef<Path>) -> BrokerResult<Self> {
        Self::open_with(path, SqliteConfig::default(), Arc::new(SystemClock))
    }

    /// Opens with explicit timings and clock.
    pub fn open_with(path: impl AsRef<Path>, config: SqliteConfig, clock: Arc<dyn Clock>) -> BrokerResult<Self> {
        let db = Db::open(path.as_ref())?;
        let shared = Shared {
            wake: crate::wake::Wake::new(db.path()),
            db,
            clock,
            config,
            published: Arc::new(tokio::sync::watch::Sender::new(0)),
            stored: Default::default(),
            last_sweep_ms: Default::default(),
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.shared.db.path()
    }

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
}

#[async_trait]
impl Broker for SqliteBroker {
    fn store_identity(&self) -> Option<usize> {
        Some(std::sync::Arc::as_ptr(&self.shared) as usize)
    }

    async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()> {
        let now = self.shared.now_ms();
        let queue = queue.to_owned();
        let rows: Vec<(u8, i64, String, Vec<u8>, String)> = messages
            .iter()
            .map(|m| {
                let visible_at = m.headers.eta.map_or(now, |eta| eta.timestamp_millis().max(now));
                let group = m.fair_group().unwrap_or_default().to_owned();
                (m.properties.priority.min(9), visible_at, m.headers.id.clone(), m.to_envelope(), group)
            })
            .collect();
        self.shared
            .db
            .call("publishing messages", move |tx| {
                for (priority, visible_at, task_id, envelope, group) in &rows {
                    let (priority, visible_at) = (*priority, *visible_at);
                    let row = NewMessage { queue: &queue, priority, visible_at, task_id, envelope, group };
                    queries::insert_message(tx, &row)?;
                }
                Ok(())
            })
            .await?;
        self.shared.wake_consumers();
        Ok(())
    }

    async fn consume(&self, queues: &Queues, prefetch: usize) -> BrokerResult<Box<dyn Consumer>> {
        Ok(Box::new(LeasedConsumer::open(self.shared.clone(), queues.clone(), prefetch).await?))
    }

    async fn len(&self, queue: &str) -> BrokerResult<u64> {
        let (queue, now) = (queue.to_owned(), self.shared.now_ms());
        self.shared.db.call("counting a queue", move |tx| queries::count_ready(tx, &queue, now)).await
    }

    async fn purge(&self, queue: &str) -> BrokerResult<u64> {
        let (queue, now) = (queue.to_owned(), self.shared.now_ms());
        Ok(self.shared.db.call("purging a queue", move |tx| queries::purge(tx, &queue, now)).await? as u64)
    }
}
