//! The guarded `http` built-in task (feature `http-task`): requests from the worker's
//! network through one pooled client per process (keep-alive, HTTP/1.1 and HTTP/2 by
//! ALPN, rustls), at most `ARTEL_HTTP_MAX_PER_HOST` requests (so connections) to one
//! host at a time, with retries where another attempt is safe and may succeed.
//!
//! Retried, with exponential backoff and full jitter or the server's `Retry-After`:
//! a connection that could not be made (nothing was sent), 429 and 503 (the server
//! turned the request away), and — for idempotent methods only — 500, 502, 504 and
//! timeouts. A status retried until the retries ran out fails the task; every other
//! status is returned for the caller to judge.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use artel_core::TaskError;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate as artel;

/// Requests to one host at a time, unless `ARTEL_HTTP_MAX_PER_HOST` says otherwise
/// (the `pool_maxsize` of Python's requests adapters).
const MAX_PER_HOST: usize = 256;
/// Retries unless the call says otherwise.
const RETRIES: u32 = 3;
/// Response bodies larger than this fail the call unless it says otherwise (10 MiB).
const MAX_BODY: u64 = 10 << 20;
/// Bodies of retried responses up to this size are read, so their connection is reused.
const DRAINED: u64 = 64 << 10;
/// The first retry's longest wait; doubled each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait before a retry, whatever `Retry-After` asks.
const LONGEST_WAIT: Duration = Duration::from_secs(60);

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
static CLIENT: LazyLock<Result<reqwest::Client, String>> = LazyLock::new(|| {
    reqwest::Client::builder()
        .user_agent(concat!("artel/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(max_per_host())
        .tcp_keepalive(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
});

/// The per-host cap, by `scheme://host:port`.
static HOSTS: LazyLock<Mutex<HashMap<String, Arc<Semaphore>>>> = LazyLock::new(Mutex::default);

fn max_per_host() -> usize {
    static MAX: LazyLock<usize> = LazyLock::new(|| match std::env::var("ARTEL_HTTP_MAX_PER_HOST") {
        Ok(text) => text.trim().parse().ok().filter(|n| *n > 0).unwrap_or_else(|| {
            tracing::warn!(value = %text, "ARTEL_HTTP_MAX_PER_HOST is not a positive number; using {MAX_PER_HOST}");
            MAX_PER_HOST
        }),
        Err(_) => MAX_PER_HOST,
    });
    *MAX
}

fn host_slots(url: &reqwest::Url) -> Arc<Semaphore> {
    let host =
        format!("{}://{}:{}", url.scheme(), url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0));
    artel_core::lock(&HOSTS).entry(host).or_insert_with(|| Arc::new(Semaphore::new(max_per_host()))).clone()
}

/// Sends a request (GET unless `method` says otherwise) and returns status, headers and
/// body. A JSON `body` is sent as JSON, a string as text; `timeout` is in seconds per
/// attempt (default 30); `retries` (default 3) as the module says; a body over
/// `max_body` bytes (default 10 MiB) fails the call.
#[artel::task]
pub async fn http(
    url: String,
    method: Option<String>,
    body: Option<Value>,
    headers: Option<BTreeMap<String, String>>,
    timeout: Option<f64>,
    retries: Option<u32>,
    max_body: Option<u64>,
) -> Result<HttpOutput, TaskError> {
    let bad = |detail: String| TaskError::invalid_arguments("http", detail);
    let method = method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| bad(format!("bad method {method:?}")))?;
    let timeout = Duration::try_from_secs_f64(timeout.unwrap_or(30.0))
        .map_err(|_| bad("timeout must be a non-negative number of seconds".to_owned()))?;
    let parsed = reqwest::Url::parse(&url).map_err(|e| bad(format!("bad url {url:?}: {e}")))?;
    let client = CLIENT.as_ref().map_err(|e| TaskError::msg(e.clone()))?;
    let (retries, max_body) = (retries.unwrap_or(RETRIES), max_body.unwrap_or(MAX_BODY));
    let slots = host_slots(&parsed);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = client.request(method.clone(), parsed.clone()).timeout(timeout);
        for (name, value) in headers.iter().flatten() {
            request = request.header(name, value);
        }
        request = match &body {
            None | Some(Value::Null) => request,
            Some(Value::String(text)) => request.body(text.clone()),
            Some(json) => request.header("content-type", "application/json").body(json.to_string()),
        };
        let permit = slots.clone().acquire_owned().await.map_err(|_| TaskError::msg("the host's slots are closed"))?;
        let wait = match request.send().await {
            Ok(response) if !retried(response.status(), &method) => {
                let output = read(response, max_body, &url).await;
                drop(permit);
                return output;
            }
            Ok(response) if attempt > retries => {
                let status = response.status();
                return Err(TaskError::msg(format!("{url} answered {status} to each of {attempt} attempts")));
            }
            Ok(response) => {
                let wait = retry_after(response.headers()).unwrap_or_else(|| backoff(attempt));
                // A short body read to its end keeps the connection for the next attempt.
                if response.content_length().is_some_and(|length| length <= DRAINED) {
                    let _ = response.bytes().await;
                }
                wait
            }
            Err(error) if attempt <= retries && (error.is_connect() || error.is_timeout() && idempotent(&method)) => {
                backoff(attempt)
            }
            Err(error) => return Err(TaskError::msg(format!("request to {url} failed: {error}"))),
        };
        drop(permit);
        tokio::time::sleep(wait).await;
    }
}

fn idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE)
}

/// Whether a response with `status` is worth another attempt of `method`.
fn retried(status: StatusCode, method: &Method) -> bool {
    match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => true,
        StatusCode::INTERNAL_SERVER_ERROR | StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => idempotent(method),
        _ => false,
    }
}

/// Exponential backoff with full jitter: up to 100 ms, 200 ms, 400 ms…
fn backoff(attempt: u32) -> Duration {
    let longest = FIRST_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(LONGEST_WAIT);
    longest.mul_f64(fastrand::f64())
}

/// The wait a `Retry-After` header asks for: seconds, or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.to_utc() - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(LONGEST_WAIT))
}

/// Status, headers and at most `max_body` bytes of body.
async fn read(mut response: reqwest::Response, max_body: u64, url: &str) -> Result<HttpOutput, TaskError> {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let too_big = || TaskError::msg(format!("the response of {url} is larger than {max_body} bytes (max_body)"));
    if response.content_length().is_some_and(|length| length > max_body) {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| TaskError::msg(format!("reading the response of {url}: {e}")))?
    {
        if (bytes.len() + chunk.len()) as u64 > max_body {
            return Err(too_big());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(HttpOutput { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() })
}
