//! kombu's JSON envelope: how a [`Message`] is stored on a list or in a table.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{DeliveryInfo, Headers, Message, Properties};

/// Why bytes are not a usable task message. Each names the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not a JSON envelope with `body`, `headers` (`task`, `id`) and `properties`.
    #[error(
        "not a Celery protocol 2 envelope (need JSON with body, headers.task and headers.id; protocol 1 is not supported): {0}"
    )]
    Envelope(#[source] serde_json::Error),
    /// `body_encoding` says base64 but the text is not.
    #[error("message body is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// A body encoding other than base64 or utf-8.
    #[error("unsupported body_encoding {0:?}; send base64 or utf-8")]
    BodyEncoding(String),
    /// The producer compressed the body.
    #[error("compressed bodies ({0}) are not accepted; disable task_compression on the producer")]
    Compressed(String),
    /// A serializer other than JSON (pickle, yaml, msgpack...).
    #[error("content type {0:?} is not accepted; artel only runs application/json messages")]
    ContentType(String),
    /// The body is JSON but not `[args, kwargs, embed]`.
    #[error("body is not [args, kwargs, embed]: {0}")]
    Body(#[source] serde_json::Error),
    /// The envelope could not be read, but its task id could ([`Message::from_envelope_or_salvage`]).
    #[error("undecodable message: {0}")]
    Salvaged(String),
}

/// Where a salvaged message keeps why the rest of it could not be read.
pub(super) const UNDECODABLE: &str = "x-artel-undecodable";

#[derive(Deserialize)]
struct Envelope {
    body: String,
    #[serde(rename = "content-encoding", default = "utf8")]
    content_encoding: String,
    #[serde(rename = "content-type", default = "json")]
    content_type: String,
    headers: Headers,
    properties: Stored<Properties>,
}

/// The envelope [`Message::to_envelope`] writes, borrowing the message.
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    body: String,
    #[serde(rename = "content-encoding")]
    content_encoding: &'a str,
    #[serde(rename = "content-type")]
    content_type: &'a str,
    headers: &'a Headers,
    properties: Stored<&'a Properties>,
}

/// A message's properties as stored: with the body's encoding, which says how to read
/// the envelope and so is not kept in the [`Message`] (nor in its `extra` map, whose
/// first key would cost every task in flight a 630-byte B-tree node).
#[derive(Serialize, Deserialize)]
struct Stored<P> {
    #[serde(default)]
    body_encoding: Option<Value>,
    #[serde(flatten)]
    properties: P,
}

fn utf8() -> String {
    "utf-8".to_owned()
}

fn json() -> String {
    super::JSON.to_owned()
}

impl Message {
    /// Parses kombu's JSON envelope (as found on a Celery Redis list).
    pub fn from_envelope(bytes: &[u8]) -> Result<Self, DecodeError> {
        let env: Envelope = match serde_json::from_slice(bytes) {
            Ok(env) => env,
            // Python's json writes bare NaN and Infinity (Celery does for an infinite time
            // limit); Celery reads them, so artel reads them as null (no value).
            Err(e) => python_non_finite_as_null(bytes)
                .and_then(|strict| serde_json::from_slice(&strict).ok())
                .ok_or(DecodeError::Envelope(e))?,
        };
        let body = match env.properties.body_encoding {
            Some(Value::String(enc)) if enc == "base64" => BASE64.decode(env.body.as_bytes())?,
            None | Some(Value::Null) => env.body.into_bytes(),
            Some(Value::String(enc)) if enc == "utf-8" => env.body.into_bytes(),
            Some(other) => return Err(DecodeError::BodyEncoding(other.to_string())),
        };
        Ok(Message {
            headers: env.headers,
            properties: env.properties.properties,
            body,
            content_type: env.content_type,
            content_encoding: env.content_encoding,
        })
    }

    /// [`Message::from_envelope`], or, when that fails but the envelope's `headers.id`
    /// can still be read, a message with that id, task name and routing whose body does
    /// not decode ([`DecodeError::Salvaged`] with the reason): the worker then
    /// dead-letters it *and* stores a FAILURE under its id, so the caller's `get()` says
    /// what was wrong instead of waiting for its timeout.
    pub fn from_envelope_or_salvage(bytes: &[u8]) -> Result<Self, DecodeError> {
        let error = match Self::from_envelope(bytes) {
            Ok(message) => return Ok(message),
            Err(error) => error,
        };
        let parsed = serde_json::from_slice::<Value>(bytes)
            .ok()
            .or_else(|| serde_json::from_slice(&python_non_finite_as_null(bytes)?).ok());
        let Some(envelope) = parsed else { return Err(error) };
        let text = |value: &Value| value.as_str().map(str::to_owned);
        let Some(id) = text(&envelope["headers"]["id"]).filter(|id| !id.is_empty()) else { return Err(error) };
        let mut message = Self::undecodable(
            &id,
            &text(&envelope["headers"]["task"]).unwrap_or_default(),
            &text(&envelope["properties"]["delivery_info"]["routing_key"]).unwrap_or_default(),
            &error.to_string(),
        );
        message.properties.delivery_tag = text(&envelope["properties"]["delivery_tag"]);
        Ok(message)
    }

    /// A message whose task `id`, `task` name and `routing_key` could be read but whose
    /// rest could not: its body never decodes ([`DecodeError::Salvaged`] with `reason`),
    /// so the worker dead-letters it and stores a FAILURE under `id`.
    pub fn undecodable(id: &str, task: &str, routing_key: &str, reason: &str) -> Self {
        let mut extra = Map::new();
        extra.insert(UNDECODABLE.to_owned(), Value::from(reason));
        Message {
            headers: Headers::named(task, id),
            properties: Properties {
                correlation_id: id.to_owned(),
                reply_to: String::new(),
                delivery_mode: 2,
                delivery_info: DeliveryInfo { routing_key: routing_key.to_owned(), ..DeliveryInfo::default() },
                priority: 0,
                expiration: None,
                delivery_tag: None,
                extra,
            },
            body: Vec::new(),
            content_type: json(),
            content_encoding: utf8(),
        }
    }

    /// Writes kombu's JSON envelope with a base64 body.
    pub fn to_envelope(&self) -> Vec<u8> {
        let env = EnvelopeRef {
            body: BASE64.encode(&self.body),
            content_encoding: &self.content_encoding,
            content_type: &self.content_type,
            headers: &self.headers,
            properties: Stored { body_encoding: Some(Value::from("base64")), properties: &self.properties },
        };
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(&env).unwrap_or_default()
    }
}

/// `bytes` with Python's non-finite numbers (`NaN`, `Infinity`, `-Infinity`) outside
/// strings replaced by `null`; `None` when there are none (nothing to retry with).
fn python_non_finite_as_null(bytes: &[u8]) -> Option<Vec<u8>> {
    const TOKENS: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];
    let (mut out, mut i, mut in_string, mut replaced) = (Vec::with_capacity(bytes.len()), 0, false, false);
    while i < bytes.len() {
        let byte = bytes[i];
        if in_string {
            out.push(byte);
            if byte == b'\\' {
                if let Some(escaped) = bytes.get(i + 1) {
                    out.push(*escaped);
                    i += 1;
                }
            } else if byte == b'"' {
                in_string = false;
            }
        } else if let Some(token) = TOKENS.iter().find(|t| bytes[i..].starts_with(t)) {
            out.extend_from_slice(b"null");
            replaced = true;
            i += token.len();
            continue;
        } else {
            in_string = byte == b'"';
            out.push(byte);
        }
        i += 1;
    }
    replaced.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pythons_non_finite_numbers_read_as_null_but_never_inside_strings() {
        let python = br#"{"timelimit": [Infinity, -Infinity], "x": NaN, "s": "NaN \"Infinity\" \\"}"#;
        let strict = python_non_finite_as_null(python).expect("replaced");
        let value: Value = serde_json::from_slice(&strict).expect("strict JSON now");
        assert_eq!(value["timelimit"], serde_json::json!([null, null]));
        assert_eq!(value["x"], Value::Null);
        assert_eq!(value["s"], "NaN \"Infinity\" \\");
        assert_eq!(python_non_finite_as_null(br#"{"a": 1}"#), None, "nothing to replace");
    }
}
