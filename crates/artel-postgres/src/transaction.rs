//! [`InTransaction`]: the broker as seen from inside the caller's transaction, so that
//! whatever a send publishes commits or rolls back with the caller's own writes.

use artel_core::{Broker, BrokerError, BrokerErrorKind, BrokerResult, Consumer, Message, Queues};
use async_trait::async_trait;
use sqlx::PgConnection;
use tokio::sync::Mutex;

use crate::PostgresBroker;

/// Publishes through `broker` on the caller's transaction; it only publishes.
pub struct InTransaction<'t> {
    broker: &'t PostgresBroker,
    conn: Mutex<&'t mut PgConnection>,
}

impl<'t> InTransaction<'t> {
    /// `conn` is the caller's open transaction (`&mut *tx`).
    pub fn new(broker: &'t PostgresBroker, conn: &'t mut PgConnection) -> Self {
        Self { broker, conn: Mutex::new(conn) }
    }
}

impl std::fmt::Debug for InTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InTransaction").field("broker", &self.broker).finish_non_exhaustive()
    }
}

fn only_publishes(what: &str) -> BrokerError {
    BrokerError::new(
        BrokerErrorKind::Other,
        format!("a broker inside a transaction only publishes; {what} through the broker itself"),
    )
}

#[async_trait]
impl Broker for InTransaction<'_> {
    async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()> {
        let mut conn = self.conn.lock().await;
        self.broker.publish_in(&mut conn, queue, messages).await
    }

    async fn consume(&self, _queues: &Queues, _prefetch: usize) -> BrokerResult<Box<dyn Consumer>> {
        Err(only_publishes("consume"))
    }

    async fn len(&self, _queue: &str) -> BrokerResult<u64> {
        Err(only_publishes("count"))
    }

    async fn purge(&self, _queue: &str) -> BrokerResult<u64> {
        Err(only_publishes("purge"))
    }
}
