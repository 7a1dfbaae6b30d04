//! Turning a [`Signature`] into a protocol 2 [`Message`], as Celery's `send_task` does.

use serde_json::{Map, Value};

use super::{DeliveryInfo, Embed, Headers, JSON, Message, Properties, TaskBody};
use crate::signature::{DEFAULT_QUEUE, Expires, Signature};
use crate::time::Timestamp;

/// The header naming a unique call's key, which the worker frees when the call ends.
pub const UNIQUE_HEADER: &str = "artel_unique";

/// The header naming the key a call's result is cached under (`cache_key`).
pub const CACHE_KEY_HEADER: &str = "artel_cache_key";

/// The header naming the group (tenant) a call is served fairly in (`group_key`).
pub const GROUP_HEADER: &str = "artel_group";

/// Longest `argsrepr`/`kwargsrepr`, as Celery truncates them.
const REPR_LIMIT: usize = 1024;

impl Signature {
    /// Builds the message to publish at time `now`; `origin` names the producer node.
    ///
    /// `countdown` becomes an absolute `eta` and `expires` an absolute time plus the
    /// millisecond `expiration` property, exactly as Python clients send them.
    pub fn to_message(&self, now: Timestamp, origin: &str) -> Message {
        self.message(now, origin, Vec::new())
    }

    /// [`Signature::to_message`] with the rest of a chain (next step last) in the embed;
    /// `link`, `link_error` and `chord` options become the embed's callbacks, errbacks
    /// and chord body.
    pub(crate) fn message(&self, now: Timestamp, origin: &str, chain: Vec<Signature>) -> Message {
        let opts = &self.options;
        let id = opts.task_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let eta = opts.eta.or_else(|| opts.countdown.map(|d| crate::time::after(now, d)));
        let (expires, expiration) = match opts.expires {
            Some(Expires::In(ttl)) => (Some(crate::time::after(now, ttl)), Some(ttl.as_millis().to_string())),
            Some(Expires::At(at)) => {
                let left = (at - now).num_milliseconds().max(0);
                (Some(at), Some(left.to_string()))
            }
            None => (None, None),
        };
        let queue = opts.queue.clone().unwrap_or_else(|| DEFAULT_QUEUE.to_owned());
        let embed = Embed {
            callbacks: self.linked("link"),
            errbacks: self.linked("link_error"),
            chain: (!chain.is_empty()).then_some(chain),
            chord: opts.extra.get("chord").and_then(|body| serde_json::from_value(body.clone()).ok()).map(Box::new),
        };
        let body = TaskBody { args: self.args.clone(), kwargs: self.kwargs.clone(), embed };
        let headers = Headers {
            lang: "rs".to_owned(),
            task: self.task.clone(),
            id: id.clone(),
            shadow: None,
            eta,
            expires,
            group: opts.group_id.clone(),
            group_index: opts.group_index,
            retries: 0,
            timelimit: (opts.time_limit.map(|d| d.as_secs_f64()), opts.soft_time_limit.map(|d| d.as_secs_f64())),
            root_id: Some(id.clone()),
            parent_id: None,
            argsrepr: Some(repr(&Value::Array(self.args.clone()))),
            kwargsrepr: Some(repr(&Value::Object(self.kwargs.clone()))),
            origin: Some(origin.to_owned()),
            ignore_result: opts.ignore_result.unwrap_or(false),
            compression: None,
            replaced_task_nesting: Some(Value::from(0)),
            stamped_headers: Some(Value::Null),
            stamps: Some(Value::Object(Map::new())),
            sent: Some(Value::from(now.timestamp_millis())),
            traceparent: None,
            tracestate: None,
            extra: self.artel_headers(),
        };
        let properties = Properties {
            correlation_id: id,
            reply_to: opts.reply_to.clone().unwrap_or_default(),
            delivery_mode: 2,
            delivery_info: DeliveryInfo { exchange: String::new(), routing_key: queue, extra: Map::new() },
            priority: opts.priority.unwrap_or(0),
            expiration,
            delivery_tag: Some(uuid::Uuid::new_v4().to_string()),
            extra: Map::new(),
        };
        Message {
            headers,
            properties,
            // Serializing JSON values cannot fail.
            body: serde_json::to_vec(&body).unwrap_or_default(),
            content_type: JSON.to_owned(),
            content_encoding: "utf-8".to_owned(),
        }
    }
}

impl Signature {
    /// The headers only artel reads: a unique call's key, a cache key, a fair group.
    fn artel_headers(&self) -> Map<String, Value> {
        let unique = self.unique().map(|(key, _)| (UNIQUE_HEADER, key));
        let cache = self.options.cache_key.clone().map(|key| (CACHE_KEY_HEADER, key));
        let group = self.options.group_key.clone().map(|key| (GROUP_HEADER, key));
        unique.into_iter().chain(cache).chain(group).map(|(name, key)| (name.to_owned(), Value::from(key))).collect()
    }
}

fn repr(value: &Value) -> String {
    let mut text = value.to_string();
    if text.len() > REPR_LIMIT {
        let mut cut = REPR_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}
