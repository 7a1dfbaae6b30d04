//! Celery protocol 2 task messages: headers + properties + body.
//!
//! [`Message`] is broker-neutral. Its JSON form is kombu's Redis envelope (base64 body,
//! `content-type`, `headers`, `properties`), which every artel broker also uses to store
//! messages, so one encoding is tested against real Celery traffic and reused everywhere.
//! Unknown headers and properties are kept (`extra`) so nothing a peer sent is lost.

mod body;
mod build;

pub use build::{CACHE_KEY_HEADER, GROUP_HEADER, UNIQUE_HEADER};
mod envelope;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::time::{Timestamp, iso_opt};

pub use body::{Embed, TaskBody};
pub use envelope::DecodeError;

/// Content type of JSON bodies, the only serializer artel accepts (never pickle).
pub const JSON: &str = "application/json";

/// A task message as it travels through a broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Task metadata (name, id, eta, retries, workflow ids, ...).
    pub headers: Headers,
    /// Transport metadata (priority, routing, correlation).
    pub properties: Properties,
    /// The serialized body: `[args, kwargs, embed]` as JSON.
    pub body: Vec<u8>,
    /// MIME type of `body`; `application/json` for everything artel writes.
    pub content_type: String,
    /// Text encoding of `body`; `utf-8`.
    pub content_encoding: String,
}

/// Protocol 2 headers, in the order Python writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headers {
    /// Producer language (`py`, `rs`); informational.
    #[serde(default = "default_lang")]
    pub lang: String,
    /// Registered task name.
    pub task: String,
    /// Task id; also the result key.
    pub id: String,
    /// Display name override.
    #[serde(default)]
    pub shadow: Option<String>,
    /// Earliest time to run.
    #[serde(default, with = "iso_opt")]
    pub eta: Option<Timestamp>,
    /// Time after which the task must not run.
    #[serde(default, with = "iso_opt")]
    pub expires: Option<Timestamp>,
    /// Group or chord this task belongs to.
    #[serde(default)]
    pub group: Option<String>,
    /// Position inside the group.
    #[serde(default)]
    pub group_index: Option<u32>,
    /// Times this task was already retried.
    #[serde(default)]
    pub retries: u32,
    /// `[hard, soft]` time limits in seconds.
    #[serde(default, with = "timelimit")]
    pub timelimit: (Option<f64>, Option<f64>),
    /// First task of the workflow.
    #[serde(default)]
    pub root_id: Option<String>,
    /// Task that published this one.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// Printable args, for logs and monitors.
    #[serde(default)]
    pub argsrepr: Option<String>,
    /// Printable kwargs, for logs and monitors.
    #[serde(default)]
    pub kwargsrepr: Option<String>,
    /// Producer node (`gen<pid>@<host>`).
    #[serde(default)]
    pub origin: Option<String>,
    /// Store no result when true (Celery 5.7 sends null for "not set").
    #[serde(default, deserialize_with = "null_is_false")]
    pub ignore_result: bool,
    /// Codec of a compressed body; artel refuses compressed bodies with a clear error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Celery's depth of `Task.replace` calls; not interpreted, sent back as read.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub replaced_task_nesting: Option<Value>,
    /// Celery's stamping: the names of the stamp headers; not interpreted, sent back as read.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub stamped_headers: Option<Value>,
    /// Celery's stamping: the stamps; not interpreted, sent back as read.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub stamps: Option<Value>,
    /// When the message was first published, unix milliseconds (`artel_sent`); see
    /// [`Headers::sent_ms`].
    #[serde(rename = "artel_sent", default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub sent: Option<Value>,
    /// The publisher's W3C trace context; see [`crate::TraceContext::of`].
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<Value>,
    /// Vendor trace state that goes with `traceparent`.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<Value>,
    /// Every other header (a user's own, a newer Celery's), kept verbatim with its nulls.
    ///
    /// The headers every artel or Celery message carries are the typed fields above, so
    /// this map stays empty for them: a `serde_json::Map` is a B-tree whose first key
    /// costs a 630-byte node, held by every task in flight.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Headers {
    /// Headers with nothing but a task name and id, every other field at its default.
    pub fn named(task: &str, id: &str) -> Self {
        Headers {
            lang: default_lang(),
            task: task.to_owned(),
            id: id.to_owned(),
            shadow: None,
            eta: None,
            expires: None,
            group: None,
            group_index: None,
            retries: 0,
            timelimit: (None, None),
            root_id: None,
            parent_id: None,
            argsrepr: None,
            kwargsrepr: None,
            origin: None,
            ignore_result: false,
            compression: None,
            replaced_task_nesting: None,
            stamped_headers: None,
            stamps: None,
            sent: None,
            traceparent: None,
            tracestate: None,
            extra: Map::new(),
        }
    }

    /// When the message was first published (unix ms), if its producer said.
    pub fn sent_ms(&self) -> Option<i64> {
        self.sent.as_ref().and_then(Value::as_i64)
    }
}

/// A header kept as read: absent stays `None`, and a `null` stays `Some(Value::Null)`
/// (serde reads a null `Option` as `None`), so a re-published message carries exactly
/// what its producer sent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Writes whole-second limits as integers, as Python sends them.
mod timelimit {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    type Limits = (Option<f64>, Option<f64>);

    fn number(secs: Option<f64>) -> Value {
        match secs {
            Some(s) if s.fract() == 0.0 && (0.0..9.0e15).contains(&s) => Value::from(s as u64),
            Some(s) => Value::from(s),
            None => Value::Null,
        }
    }

    pub(super) fn serialize<S: Serializer>(limits: &Limits, s: S) -> Result<S::Ok, S::Error> {
        (number(limits.0), number(limits.1)).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Limits, D::Error> {
        Option::<Limits>::deserialize(d).map(Option::unwrap_or_default)
    }
}

fn null_is_false<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

fn default_lang() -> String {
    "py".to_owned()
}

/// Transport properties of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Properties {
    /// The task id again.
    #[serde(default)]
    pub correlation_id: String,
    /// Client id for `rpc://` replies; empty when unused.
    #[serde(default)]
    pub reply_to: String,
    /// 2 = persistent (tasks), 1 = transient (events).
    #[serde(default = "persistent")]
    pub delivery_mode: u8,
    /// Exchange and routing key used to publish.
    #[serde(default)]
    pub delivery_info: DeliveryInfo,
    /// 0-255 as sent; artel brokers honour 0-9 (higher runs first).
    #[serde(default)]
    pub priority: u8,
    /// Remaining lifetime in milliseconds, as a string (set with `expires`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// Per-publish unique tag (Redis transports ack by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_tag: Option<String>,
    /// Anything else a producer put here, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn persistent() -> u8 {
    2
}

/// Where a message was published to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryInfo {
    /// Exchange name; `""` is the default exchange.
    #[serde(default)]
    pub exchange: String,
    /// Routing key; with the default exchange, the queue name.
    #[serde(default)]
    pub routing_key: String,
    /// Anything else (e.g. `redelivered`), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Message {
    /// Decodes the body as `[args, kwargs, embed]`, refusing anything that is not plain JSON.
    pub fn decode_body(&self) -> Result<TaskBody, DecodeError> {
        if let Some(reason) = self.properties.extra.get(envelope::UNDECODABLE) {
            return Err(DecodeError::Salvaged(reason.as_str().unwrap_or_default().to_owned()));
        }
        if let Some(codec) = &self.headers.compression {
            return Err(DecodeError::Compressed(codec.clone()));
        }
        if self.content_type != JSON {
            return Err(DecodeError::ContentType(self.content_type.clone()));
        }
        serde_json::from_slice(&self.body).map_err(DecodeError::Body)
    }

    /// The queue this message was routed to (its routing key).
    pub fn queue(&self) -> &str {
        &self.properties.delivery_info.routing_key
    }

    /// The group (tenant) this message is served fairly within its queue
    /// ([`crate::Signature::group_key`]), if it has one.
    pub fn fair_group(&self) -> Option<&str> {
        self.headers.extra.get(GROUP_HEADER).and_then(Value::as_str).filter(|group| !group.is_empty())
    }
}
