//! `artel call` and `artel result`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use artel_core::{BrokerErrorKind, Signature, State, TaskResult};
use clap::Args;
use serde_json::Value;

use super::Exit;
use crate::App;
use crate::connect::Connection;

/// Options of `artel call`.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// Task name, e.g. `sleep` or `app.add`.
    task: String,
    /// Positional arguments as a JSON array.
    #[arg(long, default_value = "[]")]
    args: String,
    /// Keyword arguments as a JSON object.
    #[arg(long, default_value = "{}")]
    kwargs: String,
    /// Wait for the result and print it (the task id then goes to standard error).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit status 3).
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Run no earlier than this many seconds from now (at most 10 years).
    #[arg(long, conflicts_with = "eta")]
    countdown: Option<f64>,
    /// Run no earlier than this time, RFC 3339 (`2026-12-01T09:00:00Z`; within 10 years).
    #[arg(long)]
    eta: Option<String>,
    /// Discard the task if not started within this many seconds (at most 10 years).
    #[arg(long)]
    expires: Option<f64>,
    /// Queue to send to.
    #[arg(short = 'Q', long, default_value = artel_core::DEFAULT_QUEUE, value_parser = super::queue_name)]
    queue: String,
    /// Priority 0-9, higher runs first.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=9))]
    priority: Option<u8>,
    /// Hard time limit in seconds: the task is aborted after this (FAILURE, TimeLimitExceeded).
    #[arg(long)]
    time_limit: Option<f64>,
    /// Soft time limit in seconds: the task is asked to stop (its context is cancelled).
    #[arg(long)]
    soft_time_limit: Option<f64>,
    /// Send it as unique for up to this many seconds: while the same task with the same
    /// arguments (or --unique-key) is queued or running, print its id instead of queueing.
    #[arg(long)]
    unique_for: Option<f64>,
    /// The unique key (instead of the task and its arguments; unique for an hour unless
    /// --unique-for says otherwise).
    #[arg(long)]
    unique_key: Option<String>,
    /// For a task with `cache_for`: cache its result under this key instead of its
    /// arguments (calls naming the same key share one result).
    #[arg(long)]
    cache_key: Option<String>,
    /// The group (a tenant) the call belongs to: a queue serves its groups round-robin
    /// (sqlite://, redis://, postgres://), so one group's backlog does not delay
    /// another's calls.
    #[arg(long)]
    group: Option<String>,
}

/// Options of `artel revoke`.
#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    /// Ids of the tasks to revoke.
    #[arg(required = true)]
    ids: Vec<String>,
    /// Also stop the tasks if they are running.
    #[arg(long)]
    terminate: bool,
}

/// Options of `artel result`.
#[derive(Debug, Args)]
#[command(after_help = "Exit status: 0 SUCCESS; 1 FAILURE or REVOKED; 3 --wait timed out; \
                        4 not finished (PENDING or an unknown id, RECEIVED, STARTED, RETRY, PROGRESS).")]
pub(crate) struct ResultArgs {
    /// The task id `artel call` printed.
    id: String,
    /// Wait until the task finishes.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit status 3).
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Print the stored result as Celery's JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("{flag} must be a non-negative number of seconds"))
}

/// The furthest ahead a task may be scheduled or expire: beyond it a time is a mistake
/// (and past what dates can hold), not a plan.
const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 86_400 + 2 * 86_400);

/// A delay of at most ten years.
fn ahead(value: f64, flag: &str) -> anyhow::Result<Duration> {
    let delay = seconds(value, flag)?;
    anyhow::ensure!(
        delay <= TEN_YEARS,
        "{flag} {value} is more than 10 years ahead: give at most {} seconds",
        TEN_YEARS.as_secs()
    );
    Ok(delay)
}

/// An RFC 3339 time at most ten years ahead.
fn eta(text: &str) -> anyhow::Result<artel_core::Timestamp> {
    let at = chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("--eta {text:?} is not an RFC 3339 time such as 2026-12-01T09:00:00Z"))?;
    let latest = chrono::Utc::now() + chrono::Duration::from_std(TEN_YEARS).unwrap_or(chrono::Duration::MAX);
    anyhow::ensure!(at <= latest, "--eta {text} is more than 10 years ahead");
    Ok(at)
}

/// The call `args` describe, or what is wrong with them.
fn signature(args: &CallArgs) -> anyhow::Result<Signature> {
    let Value::Array(positional) = serde_json::from_str(&args.args).context("--args is not valid JSON")? else {
        bail!("--args must be a JSON array, e.g. --args '[2, 3]'");
    };
    let Value::Object(kwargs) = serde_json::from_str(&args.kwargs).context("--kwargs is not valid JSON")? else {
        bail!("--kwargs must be a JSON object, e.g. --kwargs '{{\"x\": 1}}'");
    };
    let mut signature = Signature::new(&args.task).with_args(positional).queue(&args.queue);
    signature.kwargs = kwargs;
    if let Some(countdown) = args.countdown {
        signature = signature.countdown(ahead(countdown, "--countdown")?);
    }
    if let Some(at) = &args.eta {
        signature = signature.eta(eta(at)?);
    }
    if let Some(expires) = args.expires {
        signature = signature.expires_in(ahead(expires, "--expires")?);
    }
    if let Some(priority) = args.priority {
        signature = signature.priority(priority);
    }
    if let Some(limit) = args.time_limit {
        signature = signature.time_limit(seconds(limit, "--time-limit")?);
    }
    if let Some(limit) = args.soft_time_limit {
        signature = signature.soft_time_limit(seconds(limit, "--soft-time-limit")?);
    }
    if let Some(ttl) = args.unique_for {
        signature = signature.unique_for(ahead(ttl, "--unique-for")?);
    }
    if let Some(key) = &args.unique_key {
        signature = signature.unique_key(key.clone());
    }
    if let Some(key) = &args.cache_key {
        signature = signature.cache_key(key.clone());
    }
    if let Some(group) = &args.group {
        signature = signature.group_key(group.clone());
    }
    Ok(signature)
}

/// Refuses bad input before the broker is opened: a call that fails on its arguments
/// leaves nothing behind (with the default broker, no `artel.db`).
pub(crate) fn check(args: &CallArgs) -> anyhow::Result<()> {
    signature(args)?;
    seconds(args.timeout, "--timeout")?;
    Ok(())
}

pub(crate) async fn call(connection: Connection, args: CallArgs) -> anyhow::Result<ExitCode> {
    let signature = signature(&args)?;
    let app = App::new(connection.backend.clone());
    // A trace the caller is in (TRACEPARENT/TRACESTATE in the environment, as CI systems
    // and otel-cli pass it) is continued by the task.
    let id = match std::env::var("TRACEPARENT")
        .ok()
        .and_then(|parent| artel_core::TraceContext::parse(&parent, std::env::var("TRACESTATE").ok().as_deref()))
    {
        Some(outer) => artel_core::trace::scope(outer, app.send(signature)).await?,
        None => app.send(signature).await?,
    };
    if !args.wait {
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    // Standard output carries only the result, for scripts.
    eprintln!("sent {id}");
    let result = wait(&connection, &id, seconds(args.timeout, "--timeout")?).await?;
    print_value(&result)
}

/// Revokes tasks; prints each id once recorded.
pub(crate) async fn revoke(connection: Connection, args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let app = App::new(connection.backend.clone());
    for id in &args.ids {
        app.revoke(id, args.terminate).await?;
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Shows a task's state and outcome: its value or its error with the chain of causes,
/// the worker, when it finished and how long it ran. The exit status says how it ended.
pub(crate) async fn result(connection: Connection, args: ResultArgs) -> anyhow::Result<ExitCode> {
    let stored = if args.wait {
        Some(wait(&connection, &args.id, seconds(args.timeout, "--timeout")?).await?)
    } else {
        connection.backend.results().get(&args.id).await?
    };
    let state = stored.as_ref().map_or(State::Pending, |r| r.status);
    if args.json {
        let pending = || serde_json::json!({"status": State::Pending, "task_id": args.id});
        println!("{}", stored.as_ref().map_or_else(pending, |r| serde_json::to_value(r).unwrap_or_else(|_| pending())));
    } else {
        println!("{}", summary(&args.id, stored.as_ref()));
    }
    Ok(match state {
        State::Success => ExitCode::SUCCESS,
        State::Failure | State::Revoked => ExitCode::from(1),
        _ => ExitCode::from(4),
    })
}

/// `label  value` lines for `artel result`.
fn summary(id: &str, stored: Option<&TaskResult>) -> String {
    let mut lines = vec![("id", id.to_owned())];
    let Some(r) = stored else {
        lines.push(("state", "PENDING (no result stored: not run yet, unknown, or expired)".to_owned()));
        return labelled(&lines);
    };
    let text = |key: &str| r.extra.get(key).and_then(Value::as_str).map(str::to_owned);
    lines.push(("state", r.status.as_str().to_owned()));
    if let Some(name) = text("name") {
        lines.push(("task", name));
    }
    match r.error() {
        Some(error) if r.status.is_ready() => {
            lines.push(("error", error.to_string()));
            for cause in error.traceback().unwrap_or_default().lines().filter(|l| !l.trim().is_empty()) {
                lines.push(("", cause.to_owned()));
            }
        }
        _ if r.status == State::Success => lines.push(("result", r.result.to_string())),
        _ if !r.result.is_null() => lines.push(("info", r.result.to_string())),
        _ => {}
    }
    let host = r.result.get("hostname").and_then(Value::as_str).map(str::to_owned);
    if let Some(worker) = text("worker").or(host) {
        lines.push(("worker", worker));
    }
    if let Some(done) = r.date_done {
        lines.push(("done", artel_core::time::to_iso(&done)));
    }
    if let Some(runtime) = r.extra.get("runtime").and_then(Value::as_f64) {
        lines.push(("runtime", format!("{runtime:.3} s")));
    }
    labelled(&lines)
}

fn labelled(lines: &[(&str, String)]) -> String {
    let width = lines.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    let out: Vec<String> = lines.iter().map(|(label, value)| format!("{label:<width$}  {value}")).collect();
    out.join("\n")
}

async fn wait(connection: &Connection, id: &str, timeout: Duration) -> anyhow::Result<TaskResult> {
    connection.backend.results().wait(id, timeout).await.map_err(|e| match e.kind() {
        BrokerErrorKind::Timeout => {
            Exit::TimedOut(format!("task {id} did not finish within {timeout:?}; it may still run")).into()
        }
        _ => anyhow::Error::new(e).context(format!("waiting for task {id}")),
    })
}

/// Prints a finished task's value as JSON; a failure is an error (exit status 1).
fn print_value(result: &TaskResult) -> anyhow::Result<ExitCode> {
    if let Some(error) = result.error() {
        let detail = error.traceback().map(|tb| format!("\n{tb}")).unwrap_or_default();
        return Err(Exit::TaskFailed(format!("task {} {:?}: {error}{detail}", result.task_id, result.status)).into());
    }
    println!("{}", serde_json::to_string(&result.result)?);
    Ok(ExitCode::SUCCESS)
}
