//! Tasks every artel worker can run, so the CLI is useful without writing Rust:
//! `noop`, `echo` and `sleep` always; `exec` and `http` only when enabled
//! (`artel worker --enable exec,http`), because they let whoever can publish to the
//! queue run programs on the worker's machine or reach its network.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use artel_core::{Registry, TaskError};
use serde::Serialize;
use serde_json::Value;

use crate as artel;

/// Does nothing; for measuring the queue itself.
#[artel::task]
pub async fn noop() {}

/// Returns its argument.
#[artel::task]
pub async fn echo(value: Value) -> Value {
    value
}

/// Waits `seconds` (simulated I/O) and returns them.
#[artel::task]
pub async fn sleep(seconds: f64) -> Result<f64, TaskError> {
    let wait = Duration::try_from_secs_f64(seconds).map_err(|_| {
        TaskError::invalid_arguments("sleep", format!("seconds must be a non-negative number, got {seconds}"))
    })?;
    tokio::time::sleep(wait).await;
    Ok(seconds)
}

/// What `exec` returns.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

/// Runs `program` with `args` (no shell) and captures its exit code and output.
///
/// The program leads a process group of its own; when the run is abandoned (hard time
/// limit, revoke with terminate, worker stop) the whole group is killed, so nothing it
/// started keeps running.
#[artel::task]
pub async fn exec(program: String, args: Option<Vec<String>>) -> Result<ExecOutput, TaskError> {
    let child = tokio::process::Command::new(&program)
        .args(args.unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| TaskError::msg(format!("cannot run {program:?}: {e}")))?;
    let group = GroupKiller(child.id());
    let output = child.wait_with_output().await.map_err(|e| TaskError::msg(format!("waiting for {program:?}: {e}")))?;
    group.disarm();
    Ok(ExecOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Kills a process group when dropped, unless disarmed: an abandoned `exec` run takes its
/// grandchildren with it.
struct GroupKiller(Option<u32>);

impl GroupKiller {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        let leader = self.0.and_then(|pid| i32::try_from(pid).ok()).and_then(rustix::process::Pid::from_raw);
        if let Some(leader) = leader {
            // The group may be gone already; nothing to do then.
            let _ = rustix::process::kill_process_group(leader, rustix::process::Signal::KILL);
        }
    }
}

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

/// A registry holding the built-in tasks that are always on: `noop`, `echo`, `sleep`.
pub fn registry() -> Registry {
    Registry::new().with(noop).with(echo).with(sleep)
}

/// The built-in tasks that are off unless enabled by name, and why.
pub const GUARDED: [(&str, &str); 2] =
    [("exec", "runs any program on the worker's machine"), ("http", "sends requests from the worker's network")];

/// Adds the guarded built-in `name` (`exec` or `http`) to `registry`, unless a task of
/// that name is registered already (yours win).
pub fn enable(registry: &mut Registry, name: &str) -> Result<(), String> {
    if registry.get(name).is_some() && GUARDED.iter().any(|(guarded, _)| *guarded == name) {
        return Ok(());
    }
    match name {
        "exec" => drop(registry.register(exec)),
        "http" => drop(registry.register(http)),
        other => {
            let known: Vec<&str> = GUARDED.iter().map(|(name, _)| *name).collect();
            return Err(format!("unknown built-in task {other:?}: --enable takes {}", known.join(", ")));
        }
    }
    Ok(())
}
