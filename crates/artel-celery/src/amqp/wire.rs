//! [`Wire`] on RabbitMQ: events on the `celeryev` topic exchange, requests through the
//! `celery.pidbox` fanout exchange into the worker's own queue, replies through the
//! `reply.celery.pidbox` direct exchange (docs/wire-format.md §c.1; declared exactly as Celery does).

use artel_core::BrokerResult;
use async_trait::async_trait;
use futures_core::Stream;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, ExchangeKind};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Amqp, amqp_error, table};
use crate::wire::{Mailbox, Wire};

fn mailbox_queue(nodename: &str) -> String {
    format!("{nodename}.celery.pidbox")
}

fn properties(headers: &Value) -> BasicProperties {
    let headers = match headers {
        Value::Object(map) => table::to_table(map),
        _ => FieldTable::default(),
    };
    BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_content_encoding(ShortString::from("utf-8"))
        .with_delivery_mode(1)
        .with_headers(headers)
}

impl Amqp {
    async fn declare_exchange(&self, name: &str, kind: ExchangeKind, durable: bool) -> BrokerResult<()> {
        let options = ExchangeDeclareOptions { durable, ..ExchangeDeclareOptions::default() };
        let what = format!("declaring exchange {name}");
        self.shared
            .publisher
            .exchange_declare(name, kind, options, FieldTable::default())
            .await
            .map_err(|e| amqp_error(&what, e))
    }

    async fn publish_raw(&self, exchange: &str, routing_key: &str, body: &[u8], headers: Value) -> BrokerResult<()> {
        let what = format!("publishing to exchange {exchange}");
        let confirm = self
            .shared
            .publisher
            .basic_publish(exchange, routing_key, BasicPublishOptions::default(), body, properties(&headers))
            .await
            .map_err(|e| amqp_error(&what, e))?;
        // Events and replies are transient: their confirms are not awaited.
        drop(confirm);
        Ok(())
    }
}

/// A queue of one subscriber's own (exclusive, deleted with it), bound to `exchange`.
struct Subscription {
    queue: String,
    exchange: &'static str,
    routing_key: &'static str,
    arguments: FieldTable,
    /// Acknowledge each message (else the broker forgets it once sent).
    ack: bool,
    /// Bodies held for a slow reader at most.
    backlog: usize,
}

impl Amqp {
    /// Declares and binds `subscription`'s queue and forwards its message bodies, on a
    /// channel of their own that lives as long as the receiver is read.
    async fn subscribe(&self, subscription: Subscription) -> BrokerResult<mpsc::Receiver<Vec<u8>>> {
        let Subscription { queue, exchange, routing_key, arguments, ack, backlog } = subscription;
        let channel = self.shared.connection.create_channel().await.map_err(|e| amqp_error("opening a channel", e))?;
        let options = QueueDeclareOptions { auto_delete: true, exclusive: true, ..QueueDeclareOptions::default() };
        let what = format!("declaring the queue {queue}");
        channel.queue_declare(&queue, options, arguments).await.map_err(|e| amqp_error(&what, e))?;
        channel
            .queue_bind(&queue, exchange, routing_key, QueueBindOptions::default(), FieldTable::default())
            .await
            .map_err(|e| amqp_error(&what, e))?;
        let consume = BasicConsumeOptions { no_ack: !ack, ..BasicConsumeOptions::default() };
        let mut consumer = channel
            .basic_consume(&queue, &format!("{queue}-artel"), consume, FieldTable::default())
            .await
            .map_err(|e| amqp_error(&what, e))?;
        let (sender, receiver) = mpsc::channel(backlog);
        tokio::spawn(async move {
            // The channel lives as long as this task: dropping it deletes the queue.
            let _channel = channel;
            loop {
                let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut consumer).poll_next(cx)).await;
                let Some(Ok(delivery)) = next else { return };
                if ack {
                    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                }
                if sender.send(delivery.data).await.is_err() {
                    return;
                }
            }
        });
        Ok(receiver)
    }
}

#[async_trait]
impl Wire for Amqp {
    async fn publish_event(&self, routing_key: &str, body: &[u8], hostname: &str) -> BrokerResult<()> {
        self.declare_exchange("celeryev", ExchangeKind::Topic, true).await?;
        self.publish_raw("celeryev", routing_key, body, json!({"hostname": hostname})).await
    }

    async fn events(&self) -> BrokerResult<mpsc::Receiver<Vec<u8>>> {
        self.declare_exchange("celeryev", ExchangeKind::Topic, true).await?;
        // A queue of this subscriber's own, gone with it; events older than a minute are
        // not worth showing.
        let queue = format!("celeryev.artel-{}", uuid::Uuid::new_v4());
        let mut arguments = FieldTable::default();
        arguments.insert(ShortString::from("x-message-ttl"), AMQPValue::LongInt(60_000));
        self.subscribe(Subscription {
            queue,
            exchange: "celeryev",
            routing_key: "#",
            arguments,
            ack: false,
            backlog: 1024,
        })
        .await
    }

    async fn mailbox(&self, nodename: &str) -> BrokerResult<Mailbox> {
        self.declare_exchange("celery.pidbox", ExchangeKind::Fanout, false).await?;
        let mut arguments = FieldTable::default();
        arguments.insert(ShortString::from("x-message-ttl"), AMQPValue::LongInt(300_000));
        arguments.insert(ShortString::from("x-expires"), AMQPValue::LongInt(10_000));
        let queue = mailbox_queue(nodename);
        self.subscribe(Subscription {
            queue,
            exchange: "celery.pidbox",
            routing_key: "",
            arguments,
            ack: true,
            backlog: 64,
        })
        .await
    }

    async fn close_mailbox(&self, nodename: &str) {
        let _ = self.shared.publisher.queue_delete(&mailbox_queue(nodename), QueueDeleteOptions::default()).await;
    }

    async fn reply(&self, oid: &str, ticket: &str, clock: u64, body: &[u8]) -> BrokerResult<()> {
        self.declare_exchange("reply.celery.pidbox", ExchangeKind::Direct, false).await?;
        self.publish_raw("reply.celery.pidbox", oid, body, json!({"ticket": ticket, "clock": clock})).await
    }

    async fn broadcast(&self, body: &[u8]) -> BrokerResult<()> {
        self.declare_exchange("celery.pidbox", ExchangeKind::Fanout, false).await?;
        self.publish_raw("celery.pidbox", "", body, json!({"clock": 0, "expires": 0})).await
    }

    fn broker_info(&self) -> Value {
        json!({"hostname": self.shared.host, "port": self.shared.port, "transport": "amqp", "virtual_host": self.shared.vhost})
    }
}
