//! [`SentEvents`]: a producer's `task-sent` events (Celery's `task_send_sent_event`), so
//! Flower and other monitors list a task from the moment it is published, before any
//! worker takes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use artel_core::{Broker, BrokerResult, Consumer, Message, Queues};
use async_trait::async_trait;
use serde_json::{Value, json};

use crate::events::event;
use crate::wire::Wire;

/// A broker that sends a `task-sent` event over `wire` for each message it publishes.
/// An event that cannot be sent is logged, never a failed publish: the task is queued.
#[derive(Debug)]
pub struct SentEvents {
    inner: Arc<dyn Broker>,
    wire: Arc<dyn Wire>,
    hostname: String,
    clock: AtomicU64,
}

impl SentEvents {
    /// Wraps `inner`, sending events as node `hostname` (a producer's, `gen{pid}@host`).
    pub fn new(inner: Arc<dyn Broker>, wire: Arc<dyn Wire>, hostname: String) -> Self {
        Self { inner, wire, hostname, clock: AtomicU64::new(0) }
    }
}

/// The fields Celery's producer sends with `task-sent` (celery/app/amqp.py `send_task_message`).
fn sent_fields(queue: &str, message: &Message) -> serde_json::Map<String, Value> {
    let (h, delivery) = (&message.headers, &message.properties.delivery_info);
    let routing_key = if delivery.routing_key.is_empty() { queue } else { &delivery.routing_key };
    let fields = json!({
        "uuid": h.id, "root_id": h.root_id, "parent_id": h.parent_id, "name": h.task,
        "args": h.argsrepr, "kwargs": h.kwargsrepr, "retries": h.retries,
        "eta": h.eta.as_ref().map(artel_core::time::to_iso),
        "expires": h.expires.as_ref().map(artel_core::time::to_iso),
        "queue": queue, "exchange": delivery.exchange, "routing_key": routing_key,
    });
    match fields {
        Value::Object(fields) => fields,
        _ => serde_json::Map::new(),
    }
}

#[async_trait]
impl Broker for SentEvents {
    fn store_identity(&self) -> Option<usize> {
        self.inner.store_identity()
    }

    async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()> {
        self.inner.publish(queue, messages).await?;
        for message in messages {
            let clock = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
            let (routing_key, body) = event("task-sent", sent_fields(queue, message), &self.hostname, clock);
            if let Err(error) = self.wire.publish_event(&routing_key, &body, &self.hostname).await {
                tracing::warn!(%error, task_id = %message.headers.id, "could not send the task-sent event");
            }
        }
        Ok(())
    }

    async fn consume(&self, queues: &Queues, prefetch: usize) -> BrokerResult<Box<dyn Consumer>> {
        self.inner.consume(queues, prefetch).await
    }

    async fn len(&self, queue: &str) -> BrokerResult<u64> {
        self.inner.len(queue).await
    }

    async fn purge(&self, queue: &str) -> BrokerResult<u64> {
        self.inner.purge(queue).await
    }
}
