//! `amqp://`: Celery's AMQP 0-9-1 layout on RabbitMQ, through lapin (docs/wire-format.md §c).
//!
//! Tasks go to the default exchange with the queue as routing key; each queue is durable
//! and bound to a durable direct exchange of the same name, as Celery declares them
//! (`x-max-priority` only when asked, since RabbitMQ refuses a redeclaration with other
//! arguments). The headers travel as AMQP application headers, the body raw. Consumers
//! ack manually with a prefetch (basic.qos); an ETA message stays unacknowledged, held by
//! its consumer until due, like Celery's. Publishes wait for RabbitMQ's confirm.

mod consumer;
mod deliveries;
mod message;
mod table;
mod wire;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use artel_core::Queues;
use artel_core::{Broker, BrokerError, BrokerErrorKind, BrokerResult, Consumer, Message};
use async_trait::async_trait;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;

pub use message::{Arrival, to_message};

/// Where messages artel rejects go, with the reason in the `x-artel-reason` header,
/// unless [`AmqpConfig::dead_queue`] names another queue.
pub const DEAD_QUEUE: &str = "artel.dead";

/// Settings of an [`Amqp`] connection.
#[derive(Debug, Clone, Default)]
pub struct AmqpConfig {
    /// Declare queues with `x-max-priority` (1-255): priorities then work, higher first.
    /// Must match how the queues were first declared (RabbitMQ refuses a change).
    pub max_priority: Option<u8>,
    /// Declare queues with `x-expires`: RabbitMQ deletes a queue unused this long (for
    /// scratch queues; Celery declares none, so leave it unset for shared queues).
    pub queue_expires: Option<std::time::Duration>,
    /// Certificate files for an `amqps://` URL.
    pub tls: artel_core::TlsFiles,
    /// Where rejected messages go instead of [`DEAD_QUEUE`]: with `queue_expires`, scratch
    /// queues need a dead queue of their own, since RabbitMQ refuses to declare one queue
    /// with two different sets of arguments.
    pub dead_queue: Option<String>,
}

/// A RabbitMQ broker in Celery's layout; clones share the connection.
#[derive(Clone)]
pub struct Amqp {
    pub(crate) shared: Arc<Shared>,
    /// Where deliveries are counted (for quarantining poison messages), if anywhere.
    pub(crate) counts: Option<deliveries::DeliveryCounts>,
}

pub(crate) struct Shared {
    pub(crate) connection: Connection,
    /// Publishes, in confirm mode.
    pub(crate) publisher: Channel,
    declared: Mutex<HashSet<String>>,
    pub(crate) config: AmqpConfig,
    /// Where the broker is, for `inspect stats`.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) vhost: String,
}

impl std::fmt::Debug for Amqp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Amqp").field("config", &self.shared.config).finish()
    }
}

pub(crate) fn amqp_error(what: &str, e: lapin::Error) -> BrokerError {
    let kind = match e.kind() {
        lapin::ErrorKind::IOError(_) | lapin::ErrorKind::InvalidConnectionState(_) => BrokerErrorKind::Connection,
        lapin::ErrorKind::InvalidChannelState(..) => BrokerErrorKind::Closed,
        _ => BrokerErrorKind::Other,
    };
    BrokerError::new(kind, what.to_owned()).with_source(e)
}

/// The rustls settings for `url`: the system's CAs plus `files.ca`, and a client
/// certificate when one is given; certificate files for a plain `amqp://` URL are refused.
fn tls_config(url: &str, files: &artel_core::TlsFiles) -> BrokerResult<lapin::tcp::OwnedTLSConfig> {
    let mut config = lapin::tcp::OwnedTLSConfig::default();
    if files.is_empty() {
        return Ok(config);
    }
    let refuse = |problem: String| BrokerError::new(BrokerErrorKind::Other, problem);
    if !url.starts_with("amqps://") {
        return Err(refuse(format!(
            "certificate files were given for {}, which is not TLS: use amqps:// (or unset the ARTEL_TLS_* variables)",
            artel_core::redact_url(url)
        )));
    }
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|e| refuse(format!("cannot read the {what} {}: {e}", path.display())))
    };
    if let Some(ca) = &files.ca {
        config.cert_chain = Some(String::from_utf8_lossy(&read(ca, "CA file (?ca=)")?).into_owned());
    }
    config.identity = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => Some(lapin::tcp::OwnedIdentity::PKCS8 {
            pem: read(cert, "client certificate (?cert=)")?,
            key: read(key, "client key (?key=)")?,
        }),
        (None, None) => None,
        _ => {
            return Err(refuse(
                "a client certificate needs its key and the other way round: give both ?cert= and ?key=".to_owned(),
            ));
        }
    };
    Ok(config)
}

impl Amqp {
    /// Connects to `url` (`amqp://user:password@host:5672/vhost`; Celery writes the
    /// default vhost as `//`; `amqps://` over TLS with `config.tls`).
    pub async fn connect(url: &str, config: AmqpConfig) -> BrokerResult<Self> {
        let properties = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current());
        let tls = tls_config(url, &config.tls)?;
        let connection = Connection::connect_with_config(url, properties, tls).await.map_err(|e| {
            let refused = lapin::protocol::AMQPErrorKind::Soft(lapin::protocol::AMQPSoftError::ACCESSREFUSED);
            let tls_hint = artel_core::tls_hint(&format!("{e:?} {e}"));
            let hint = match e.kind() {
                lapin::ErrorKind::ProtocolError(error) if *error.kind() == refused => {
                    " (check the user and password in the URL, amqp://USER:PASSWORD@HOST:5672/VHOST, and the user's access to the vhost)"
                }
                _ if tls_hint.is_some() => tls_hint.unwrap_or_default(),
                lapin::ErrorKind::IOError(_) => " (is rabbitmq-server running there?)",
                _ => "",
            };
            amqp_error(&format!("connecting to RabbitMQ at {}{hint}", artel_core::redact_url(url)), e)
        })?;
        let publisher = connection.create_channel().await.map_err(|e| amqp_error("opening a channel", e))?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| amqp_error("turning on publisher confirms", e))?;
        let uri: lapin::uri::AMQPUri = url.parse().map_err(|e: String| {
            BrokerError::new(BrokerErrorKind::Other, format!("bad AMQP URL {}: {e}", artel_core::redact_url(url)))
        })?;
        let (host, port, vhost) = (uri.authority.host.clone(), uri.authority.port, uri.vhost.clone());
        let shared = Shared { connection, publisher, declared: Mutex::default(), config, host, port, vhost };
        Ok(Self { shared: Arc::new(shared), counts: None })
    }

    /// Counts deliveries in `results` (the Celery Redis result backend this broker's
    /// tasks store their results in), so a message that keeps killing its workers is
    /// quarantined: RabbitMQ's classic queues only say whether a message was redelivered.
    pub fn with_delivery_counts(mut self, results: crate::CeleryRedis) -> Self {
        self.counts = Some(deliveries::DeliveryCounts::new(results));
        self
    }

    /// This broker with its results, chords and revocations in `results` (Celery's Redis
    /// result backend): control broadcasts (a revoke) then go over RabbitMQ, and
    /// deliveries are counted there; locks, unique task keys, shared rate limits and the
    /// shared cache live on its Redis.
    pub fn backend(self, results: crate::CeleryRedis) -> artel_core::Backend {
        let results = results.with_control(Arc::new(self.clone()));
        let broker = self.with_delivery_counts(results.clone());
        artel_core::Backend::new(Arc::new(broker), results.clone())
            .with_locks(Arc::new(results.lock_server()))
            .with_unique(Arc::new(results.lock_server()))
            .with_rate_limits(Arc::new(results.lock_server()))
            .with_cache(Arc::new(results.cache_store()))
    }

    /// Where rejected messages go.
    pub(crate) fn dead_queue(&self) -> &str {
        self.shared.config.dead_queue.as_deref().unwrap_or(DEAD_QUEUE)
    }

    /// Declares `queue` (and its exchange and binding) once per connection.
    pub(crate) async fn declare(&self, channel: &Channel, queue: &str) -> BrokerResult<()> {
        if self.shared.declared.lock().unwrap_or_else(|e| e.into_inner()).contains(queue) {
            return Ok(());
        }
        let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        let mut arguments = FieldTable::default();
        let dead = queue == self.dead_queue();
        if let (Some(max), false) = (self.shared.config.max_priority, dead) {
            arguments.insert(ShortString::from("x-max-priority"), AMQPValue::ShortShortUInt(max));
        }
        if let Some(expires) = self.shared.config.queue_expires {
            let ms = i64::try_from(expires.as_millis()).unwrap_or(i64::MAX);
            arguments.insert(ShortString::from("x-expires"), AMQPValue::LongLongInt(ms));
        }
        let what = format!("declaring queue {queue}");
        channel.queue_declare(queue, durable, arguments).await.map_err(|e| amqp_error(&what, e))?;
        if !dead {
            let exchange = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
            channel
                .exchange_declare(queue, ExchangeKind::Direct, exchange, FieldTable::default())
                .await
                .map_err(|e| amqp_error(&what, e))?;
            channel
                .queue_bind(queue, queue, queue, QueueBindOptions::default(), FieldTable::default())
                .await
                .map_err(|e| amqp_error(&what, e))?;
        }
        self.shared.declared.lock().unwrap_or_else(|e| e.into_inner()).insert(queue.to_owned());
        Ok(())
    }

    /// Publishes one message to `queue` and waits for RabbitMQ to confirm it.
    pub(crate) async fn publish_one(
        &self,
        queue: &str,
        message: &Message,
        extra: Option<(&str, &str)>,
    ) -> BrokerResult<()> {
        let mut headers = match serde_json::to_value(&message.headers) {
            Ok(Value::Object(headers)) => headers,
            _ => serde_json::Map::new(),
        };
        if let Some((key, value)) = extra {
            headers.insert(key.to_owned(), Value::from(value));
        }
        let p = &message.properties;
        let mut properties = BasicProperties::default()
            .with_content_type(ShortString::from(message.content_type.as_str()))
            .with_content_encoding(ShortString::from(message.content_encoding.as_str()))
            .with_delivery_mode(p.delivery_mode)
            .with_priority(p.priority)
            .with_correlation_id(ShortString::from(p.correlation_id.as_str()))
            .with_headers(table::to_table(&headers));
        if !p.reply_to.is_empty() {
            properties = properties.with_reply_to(ShortString::from(p.reply_to.as_str()));
        }
        if let Some(expiration) = &p.expiration {
            properties = properties.with_expiration(ShortString::from(expiration.as_str()));
        }
        let what = format!("publishing to queue {queue}");
        let confirm = self
            .shared
            .publisher
            .basic_publish("", queue, BasicPublishOptions::default(), &message.body, properties)
            .await
            .map_err(|e| amqp_error(&what, e))?;
        let confirmation = confirm.await.map_err(|e| amqp_error(&what, e))?;
        if confirmation.is_nack() {
            return Err(BrokerError::new(BrokerErrorKind::Other, format!("RabbitMQ refused a message for {queue}")));
        }
        Ok(())
    }
}

#[async_trait]
impl Broker for Amqp {
    async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()> {
        self.declare(&self.shared.publisher, queue).await?;
        for message in messages {
            self.publish_one(queue, message, None).await?;
        }
        Ok(())
    }

    async fn consume(&self, queues: &Queues, prefetch: usize) -> BrokerResult<Box<dyn Consumer>> {
        Ok(Box::new(consumer::AmqpConsumer::start(self.clone(), queues, prefetch).await?))
    }

    async fn len(&self, queue: &str) -> BrokerResult<u64> {
        self.declare(&self.shared.publisher, queue).await?;
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let declared = self
            .shared
            .publisher
            .queue_declare(queue, passive, FieldTable::default())
            .await
            .map_err(|e| amqp_error("counting a queue", e))?;
        Ok(u64::from(declared.message_count()))
    }

    async fn purge(&self, queue: &str) -> BrokerResult<u64> {
        self.declare(&self.shared.publisher, queue).await?;
        let purged = self
            .shared
            .publisher
            .queue_purge(queue, QueuePurgeOptions::default())
            .await
            .map_err(|e| amqp_error("purging a queue", e))?;
        Ok(u64::from(purged))
    }
}
