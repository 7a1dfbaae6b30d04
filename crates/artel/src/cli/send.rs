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
    /// Run no earlier than this many seconds from now.
    #[arg(long)]
    countdown: Option<f64>,
    /// Discard the task if not started within this many seconds.
    #[arg(long)]
    expires: Option<f64>,
    /// Queue to send to.
    #[arg(short = 'Q', long, default_value = artel_core::DEFAULT_QUEUE)]
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
pub(crate) struct ResultArgs {
    /// The task id `artel call` printed.
    id: String,
    /// Wait until the task finishes.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit status 3).
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("{flag} must be a non-negative number of seconds"))
}

pub(crate) async fn call(connection: Connection, args: CallArgs) -> anyhow::Result<ExitCode> {
    let Value::Array(positional) = serde_json::from_str(&args.args).context("--args is not valid JSON")? else {
        bail!("--args must be a JSON array, e.g. --args '[2, 3]'");
    };
    let Value::Object(kwargs) = serde_json::from_str(&args.kwargs).context("--kwargs is not valid JSON")? else {
        bail!("--kwargs must be a JSON object, e.g. --kwargs '{{\"x\": 1}}'");
    };
    let mut signature = Signature::new(&args.task).with_args(positional).queue(&args.queue);
    signature.kwargs = kwargs;
    if let Some(countdown) = args.countdown {
        signature = signature.countdown(seconds(countdown, "--countdown")?);
    }
    if let Some(expires) = args.expires {
        signature = signature.expires_in(seconds(expires, "--expires")?);
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
    let app = App::new(connection.broker.clone(), connection.backend.clone());
    let id = app.send(signature).await?;
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
    let app = App::new(connection.broker.clone(), connection.backend.clone());
    for id in &args.ids {
        app.revoke(id, args.terminate).await?;
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn result(connection: Connection, args: ResultArgs) -> anyhow::Result<ExitCode> {
    if args.wait {
        let result = wait(&connection, &args.id, seconds(args.timeout, "--timeout")?).await?;
        return print_value(&result);
    }
    match connection.backend.get(&args.id).await? {
        None => {
            println!("{}", serde_json::json!({"status": State::Pending, "task_id": args.id}));
            Ok(ExitCode::SUCCESS)
        }
        Some(result) if result.status.is_ready() => print_value(&result),
        Some(result) => {
            println!("{}", serde_json::to_string(&result)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn wait(connection: &Connection, id: &str, timeout: Duration) -> anyhow::Result<TaskResult> {
    connection.backend.wait(id, timeout).await.map_err(|e| match e.kind() {
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
