//! Remote control (Celery's `inspect` and `control`): what a request asks
//! ([`ControlRequest`], kombu's pidbox JSON on every broker), how a worker answers it
//! ([`Responder`], Celery's reply shapes word for word), and how requests and replies
//! travel on brokers without a pidbox ([`ControlBoard`], [`ask`]). One vocabulary for
//! operators whatever the broker: `celery inspect` over a Celery transport, `artel
//! inspect` over the native ones, the same names and the same replies.

mod address;
mod answer;
mod board;

use serde_json::Value;

pub use answer::{RemoteEvents, Responder};
pub use board::{ControlBoard, KEPT_MS, ask, row_cursor};

use address::Address;

/// What a remote-control request asks, read from a pidbox message body.
#[derive(Debug, serde::Deserialize)]
pub struct ControlRequest {
    method: String,
    #[serde(default)]
    arguments: serde_json::Map<String, Value>,
    #[serde(flatten)]
    address: Address,
    #[serde(default)]
    ticket: Option<String>,
    #[serde(default)]
    reply_to: Option<ReplyTo>,
}

#[derive(Debug, serde::Deserialize)]
struct ReplyTo {
    routing_key: String,
}

impl ControlRequest {
    /// The request in a pidbox message body, or why it is not one.
    pub fn decode(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The body of a request for `method` with `arguments`, to the nodes in
    /// `destination` (every worker when empty), whose replies carry `ticket`.
    pub fn encode(
        method: &str,
        arguments: &serde_json::Map<String, Value>,
        destination: &[String],
        ticket: &str,
    ) -> Vec<u8> {
        let destination = (!destination.is_empty()).then_some(destination);
        let request = serde_json::json!({
            "method": method, "arguments": arguments, "destination": destination, "ticket": ticket,
        });
        request.to_string().into_bytes()
    }

    /// The method asked for (`ping`, `revoke`, ...).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Whether a worker named `nodename` is to answer (`destination`, or `pattern` with
    /// its `matcher`, as kombu decides).
    pub fn is_for(&self, nodename: &str) -> bool {
        self.address.includes(nodename)
    }

    /// The ticket replies are to carry, when the sender waits for them.
    pub fn ticket(&self) -> Option<&str> {
        self.ticket.as_deref()
    }

    /// The client queue (kombu's `oid`) replies go to, when the sender waits for them.
    pub fn reply_to(&self) -> Option<&str> {
        self.reply_to.as_ref().map(|to| to.routing_key.as_str())
    }

    /// The task ids a `revoke` or `terminate` names: one id or a list (non-strings skipped).
    pub fn task_ids(&self) -> Vec<String> {
        self.task_ids_in("task_id")
    }

    /// The task ids in argument `key`: one id or a list (non-strings skipped).
    fn task_ids_in(&self, key: &str) -> Vec<String> {
        match self.arguments.get(key) {
            Some(Value::String(id)) => vec![id.clone()],
            Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    }

    /// Argument `key` as text: a string, or a number as written (`rate_limit 10`).
    fn text(&self, key: &str) -> Option<String> {
        match self.arguments.get(key)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}
