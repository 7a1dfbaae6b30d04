//! [`Wire`] on the Redis layout: events on the `celeryev` channels, requests on the
//! `celery.pidbox` channel, replies pushed to the client's reply list (docs/wire-format.md §b.4, §f.1).

use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use artel_core::BrokerResult;
use artel_redis::toolkit::redis_error;
use async_trait::async_trait;

use crate::broker::CeleryRedis;
use crate::envelope;
use crate::keys::SEP;
use crate::wire::{Mailbox, Wire};

fn mailbox_member(nodename: &str) -> String {
    format!("{SEP}{SEP}{nodename}.celery.pidbox")
}

/// The body inside a kombu envelope as published on Redis (a remote-control request,
/// an event), base64-decoded when the envelope says so; `None` when it is not one.
pub fn unwrap_envelope(payload: &[u8]) -> Option<Vec<u8>> {
    let envelope: Value = serde_json::from_slice(payload).ok()?;
    let body = envelope.get("body")?.as_str()?;
    match envelope.pointer("/properties/body_encoding").and_then(Value::as_str) {
        Some("base64") => base64::engine::general_purpose::STANDARD.decode(body).ok(),
        _ => Some(body.as_bytes().to_vec()),
    }
}

/// The bodies of the messages `pubsub` receives, unwrapped from kombu's envelope, until
/// the receiver is dropped; malformed messages are logged and skipped.
fn forward(pubsub: redis::aio::PubSub) -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel(1024);
    tokio::spawn(async move {
        let mut pubsub = pubsub;
        let mut messages = pubsub.on_message();
        loop {
            let next =
                std::future::poll_fn(|cx| futures_core::Stream::poll_next(std::pin::Pin::new(&mut messages), cx));
            let Some(message) = next.await else { return };
            match unwrap_envelope(message.get_payload_bytes()) {
                Some(body) => {
                    if sender.send(body).await.is_err() {
                        return;
                    }
                }
                None => tracing::warn!(channel = message.get_channel_name(), "ignoring a malformed message"),
            }
        }
    });
    receiver
}

#[async_trait]
impl Wire for CeleryRedis {
    async fn publish_event(&self, routing_key: &str, body: &[u8], hostname: &str) -> BrokerResult<()> {
        let message = envelope(body, json!({"hostname": hostname}), "celeryev", routing_key, 1);
        let mut conn = self.shared.conn.clone();
        redis::cmd("PUBLISH")
            .arg(self.shared.names.fanout("celeryev", routing_key))
            .arg(message)
            .query_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| redis_error("publishing an event", e))
    }

    async fn events(&self) -> BrokerResult<mpsc::Receiver<Vec<u8>>> {
        let mut pubsub =
            self.shared.client.get_async_pubsub().await.map_err(|e| redis_error("opening an event subscription", e))?;
        pubsub
            .psubscribe(self.shared.names.fanout("celeryev", "*"))
            .await
            .map_err(|e| redis_error("subscribing to events", e))?;
        Ok(forward(pubsub))
    }

    async fn mailbox(&self, nodename: &str) -> BrokerResult<Mailbox> {
        let names = &self.shared.names;
        let mut conn = self.shared.conn.clone();
        redis::cmd("SADD")
            .arg(names.binding("celery.pidbox"))
            .arg(mailbox_member(nodename))
            .query_async::<i64>(&mut conn)
            .await
            .map_err(|e| redis_error("registering the worker's mailbox", e))?;
        let mut pubsub =
            self.shared.client.get_async_pubsub().await.map_err(|e| redis_error("opening the mailbox", e))?;
        pubsub
            .subscribe(names.fanout("celery.pidbox", ""))
            .await
            .map_err(|e| redis_error("subscribing to remote control", e))?;
        Ok(forward(pubsub))
    }

    async fn close_mailbox(&self, nodename: &str) {
        let mut conn = self.shared.conn.clone();
        let binding = self.shared.names.binding("celery.pidbox");
        let _ = redis::cmd("SREM").arg(binding).arg(mailbox_member(nodename)).query_async::<i64>(&mut conn).await;
    }

    async fn reply(&self, oid: &str, ticket: &str, clock: u64, body: &[u8]) -> BrokerResult<()> {
        let message = envelope(body, json!({"ticket": ticket, "clock": clock}), "reply.celery.pidbox", oid, 1);
        let mut conn = self.shared.conn.clone();
        redis::cmd("LPUSH")
            .arg(self.shared.names.reply_list(oid))
            .arg(message)
            .query_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| redis_error("sending a remote-control reply", e))
    }

    async fn broadcast(&self, body: &[u8]) -> BrokerResult<()> {
        let message = envelope(body, json!({"clock": 0, "expires": 0}), "celery.pidbox", "", 2);
        let mut conn = self.shared.conn.clone();
        redis::cmd("PUBLISH")
            .arg(self.shared.names.fanout("celery.pidbox", ""))
            .arg(message)
            .query_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| redis_error("broadcasting a control command", e))
    }

    fn broker_info(&self) -> Value {
        let info = self.shared.client.get_connection_info();
        let (host, port) = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) | redis::ConnectionAddr::TcpTls { host, port, .. } => {
                (host.clone(), *port)
            }
            _ => (String::new(), 0),
        };
        json!({"hostname": host, "port": port, "transport": "redis", "virtual_host": self.shared.names.db.to_string()})
    }
}
