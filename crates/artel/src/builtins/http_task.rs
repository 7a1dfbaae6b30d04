//! The guarded `http` built-in task (feature `http-task`): requests from the worker's
//! network, through one pooled client with rustls.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use artel_core::TaskError;
use serde::Serialize;
use serde_json::Value;

use crate as artel;

/// What `http` returns.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct HttpOutput {
    /// HTTP status code.
    pub status: u16,
    /// Response headers (the last value of repeated ones).
    pub headers: BTreeMap<String, String>,
    /// Response body (lossy UTF-8).
    pub body: String,
}

/// One client for every `http` call of the process, so connections are pooled.
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

/// Sends a request (GET unless `method` says otherwise) and returns status, headers and
/// body. A JSON `body` is sent as JSON, a string as text; `timeout` is in seconds
/// (default 30). Non-2xx statuses are returned, not raised: the caller decides.
#[artel::task]
pub async fn http(
    url: String,
    method: Option<String>,
    body: Option<Value>,
    headers: Option<BTreeMap<String, String>>,
    timeout: Option<f64>,
) -> Result<HttpOutput, TaskError> {
    let bad = |detail: String| TaskError::invalid_arguments("http", detail);
    let method = method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| bad(format!("bad method {method:?}")))?;
    let timeout = Duration::try_from_secs_f64(timeout.unwrap_or(30.0))
        .map_err(|_| bad("timeout must be a non-negative number of seconds".to_owned()))?;
    let mut request = client().request(method, &url).timeout(timeout);
    for (name, value) in headers.unwrap_or_default() {
        request = request.header(name, value);
    }
    request = match body {
        None | Some(Value::Null) => request,
        Some(Value::String(text)) => request.body(text),
        Some(json) => request.header("content-type", "application/json").body(json.to_string()),
    };
    let response = request.send().await.map_err(|e| TaskError::msg(format!("request to {url} failed: {e}")))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let bytes = response.bytes().await.map_err(|e| TaskError::msg(format!("reading the response of {url}: {e}")))?;
    Ok(HttpOutput { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() })
}
