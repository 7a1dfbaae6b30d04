//! kombu's JSON envelope: how a [`Message`] is stored on a list or in a table.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Headers, Message, Properties};

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
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    body: String,
    #[serde(rename = "content-encoding", default = "utf8")]
    content_encoding: String,
    #[serde(rename = "content-type", default = "json")]
    content_type: String,
    headers: Headers,
    properties: Properties,
}

fn utf8() -> String {
    "utf-8".to_owned()
}

fn json() -> String {
    super::JSON.to_owned()
}

const BODY_ENCODING: &str = "body_encoding";

impl Message {
    /// Parses kombu's JSON envelope (as found on a Celery Redis list).
    pub fn from_envelope(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut env: Envelope = serde_json::from_slice(bytes).map_err(DecodeError::Envelope)?;
        let body = match env.properties.extra.remove(BODY_ENCODING) {
            Some(Value::String(enc)) if enc == "base64" => BASE64.decode(env.body.as_bytes())?,
            None | Some(Value::Null) => env.body.into_bytes(),
            Some(Value::String(enc)) if enc == "utf-8" => env.body.into_bytes(),
            Some(other) => return Err(DecodeError::BodyEncoding(other.to_string())),
        };
        Ok(Message {
            headers: env.headers,
            properties: env.properties,
            body,
            content_type: env.content_type,
            content_encoding: env.content_encoding,
        })
    }

    /// Writes kombu's JSON envelope with a base64 body.
    pub fn to_envelope(&self) -> Vec<u8> {
        let mut properties = self.properties.clone();
        properties.extra.insert(BODY_ENCODING.to_owned(), Value::from("base64"));
        let env = Envelope {
            body: BASE64.encode(&self.body),
            content_encoding: self.content_encoding.clone(),
            content_type: self.content_type.clone(),
            headers: self.headers.clone(),
            properties,
        };
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(&env).unwrap_or_default()
    }
}
