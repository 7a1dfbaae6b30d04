//! Tasks every artel worker can run, so the CLI is useful without writing Rust:
//! `noop`, `echo`, `sleep` and `exec`.

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
#[artel::task]
pub async fn exec(program: String, args: Option<Vec<String>>) -> Result<ExecOutput, TaskError> {
    let output = tokio::process::Command::new(&program)
        .args(args.unwrap_or_default())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| TaskError::msg(format!("cannot run {program:?}: {e}")))?;
    Ok(ExecOutput {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// A registry holding the built-in tasks.
pub fn registry() -> Registry {
    Registry::new().with(noop).with(echo).with(sleep).with(exec)
}
