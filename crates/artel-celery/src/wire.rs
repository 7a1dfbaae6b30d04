//! [`Wire`]: how events and remote-control messages travel — Redis PUB/SUB and lists on
//! the Redis layout, exchanges and queues on RabbitMQ — so the event publisher and the
//! pidbox server are written once.

use std::fmt;

use artel_core::BrokerResult;
use async_trait::async_trait;
use tokio::sync::mpsc;

/// Remote-control request bodies (JSON) arriving in a worker's mailbox.
pub type Mailbox = mpsc::Receiver<Vec<u8>>;

/// The transport under Celery's events and remote control.
#[async_trait]
pub trait Wire: Send + Sync + fmt::Debug {
    /// Publishes an event `body` (JSON) under `routing_key` (`worker.heartbeat`...) from
    /// node `hostname`.
    async fn publish_event(&self, routing_key: &str, body: &[u8], hostname: &str) -> BrokerResult<()>;

    /// Subscribes to every event (Flower's view): the bodies (JSON: one event, or a list
    /// of task events), as they come.
    async fn events(&self) -> BrokerResult<mpsc::Receiver<Vec<u8>>>;

    /// Opens node `nodename`'s mailbox: the broadcast requests every worker receives.
    async fn mailbox(&self, nodename: &str) -> BrokerResult<Mailbox>;

    /// Closes node `nodename`'s mailbox (at shutdown).
    async fn close_mailbox(&self, nodename: &str);

    /// Sends a reply `body` (JSON) for request `ticket` to client `oid`.
    async fn reply(&self, oid: &str, ticket: &str, clock: u64, body: &[u8]) -> BrokerResult<()>;

    /// Broadcasts a request `body` (JSON) to every worker, with no reply expected.
    async fn broadcast(&self, body: &[u8]) -> BrokerResult<()>;

    /// Describes the broker for `inspect stats` (`hostname`, `port`, `transport`...).
    fn broker_info(&self) -> serde_json::Value;
}
