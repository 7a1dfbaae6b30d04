//! Tasks every artel worker can run, so the CLI is useful without writing Rust:
//! `noop`, `echo` and `sleep` always; `exec` and `http` only when enabled
//! (`artel worker --enable exec,http`), because they let whoever can publish to the
//! queue run programs on the worker's machine or reach its network.

use std::time::Duration;

use artel_core::{Context, Registry, TaskError};
use serde::Serialize;
use serde_json::Value;

use crate as artel;

#[cfg(feature = "http-task")]
mod http_task;
#[cfg(feature = "http-task")]
pub use http_task::{HttpOutput, http};

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

/// Runs `program` with `args` (no shell) and captures its exit code and output. The
/// program finds its task id in `ARTEL_TASK_ID` (to make its effects idempotent).
///
/// The program leads a process group of its own; when the run is abandoned (hard time
/// limit, revoke with terminate, worker stop) the whole group is killed, so nothing it
/// started keeps running.
#[artel::task]
pub async fn exec(ctx: Context, program: String, args: Option<Vec<String>>) -> Result<ExecOutput, TaskError> {
    let child = tokio::process::Command::new(&program)
        .args(args.unwrap_or_default())
        .env("ARTEL_TASK_ID", ctx.id())
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
        #[cfg(feature = "http-task")]
        "http" => drop(registry.register(http)),
        #[cfg(not(feature = "http-task"))]
        "http" => return Err("this build of artel has no http task: build it with the `http-task` feature".to_owned()),
        other => {
            let known: Vec<&str> = GUARDED.iter().map(|(name, _)| *name).collect();
            return Err(format!("unknown built-in task {other:?}: --enable takes {}", known.join(", ")));
        }
    }
    Ok(())
}
