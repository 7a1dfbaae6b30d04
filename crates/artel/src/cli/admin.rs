//! `artel queues`, `purge`, `dead`, `stats`, `cache`: reading and tidying a broker (any
//! with the [`Admin`] capability: sqlite://, redis://).

use std::process::ExitCode;

use std::sync::Arc;

use artel_core::{Backend, Inspect, WorkerRegistry};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::table::{count, render};
use crate::connect::Connection;

/// `--json`, for commands whose output scripts read.
#[derive(Debug, Args)]
pub(crate) struct JsonArg {
    /// Print JSON (the shapes the dashboard's /api/ serves) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Prints `value` as one line of JSON.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string(value)?);
    Ok(ExitCode::SUCCESS)
}

/// Options of `artel purge`.
#[derive(Debug, Args)]
pub(crate) struct PurgeArgs {
    /// The queue to empty (messages held by workers are kept).
    queue: String,
}

/// `artel dead ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum DeadCommand {
    /// List dead-lettered messages with the reason they were rejected.
    List {
        /// Only this queue.
        #[arg(short = 'Q', long)]
        queue: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        output: JsonArg,
    },
    /// Put dead messages back on their queues.
    Retry {
        /// Only this queue.
        #[arg(short = 'Q', long)]
        queue: Option<String>,
    },
    /// Delete dead messages.
    Purge {
        /// Only this queue.
        #[arg(short = 'Q', long)]
        queue: Option<String>,
    },
}

/// `artel cache ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// Delete memoized results (tasks with `cache_for`), so the next calls run again.
    Clear {
        /// Only this task's results (its registered name).
        #[arg(long)]
        task: Option<String>,
        #[command(flatten)]
        output: JsonArg,
    },
}

pub(crate) async fn cache(backend: &Backend, command: CacheCommand) -> anyhow::Result<ExitCode> {
    let CacheCommand::Clear { task, output } = command;
    let store = backend.cache().ok_or_else(|| {
        anyhow::anyhow!(
            "`artel cache` needs a broker with a shared cache: sqlite://, redis://, postgres:// or celery+redis://"
        )
    })?;
    let cleared = store.clear(&artel_runtime::memo_prefix(task.as_deref())).await?;
    if output.json {
        return print_json(&serde_json::json!({ "cleared": cleared, "task": task }));
    }
    let of = task.map(|task| format!(" of {task}")).unwrap_or_default();
    println!("cleared {}{of}", count(cleared, "memoized result"));
    Ok(ExitCode::SUCCESS)
}

/// The capability `artel {command}` needs, or an error naming the brokers that offer it.
pub(crate) fn offered<'a, T: ?Sized>(capability: Option<&'a Arc<T>>, command: &str) -> anyhow::Result<&'a T> {
    capability.map(Arc::as_ref).ok_or_else(|| {
        anyhow::anyhow!(
            "`artel {command}` needs a sqlite://, redis:// or celery+redis:// broker (on amqp://, use RabbitMQ's management tools)"
        )
    })
}

pub(crate) async fn queues(broker: &dyn Inspect, output: JsonArg) -> anyhow::Result<ExitCode> {
    let counts = broker.queue_counts().await?;
    if output.json {
        return print_json(&counts);
    }
    let rows: Vec<Vec<String>> = counts
        .into_iter()
        .map(|c| vec![c.queue, c.ready.to_string(), c.delayed.to_string(), c.leased.to_string(), c.dead.to_string()])
        .collect();
    if rows.is_empty() {
        println!("no queues yet");
    } else {
        println!("{}", render(&["queue", "ready", "delayed", "running/held", "dead"], &rows));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn purge(connection: Connection, args: PurgeArgs) -> anyhow::Result<ExitCode> {
    let removed = connection.backend.broker().purge(&args.queue).await?;
    println!("purged {} from {}", count(removed, "message"), args.queue);
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn dead(backend: &Backend, command: DeadCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeadCommand::List { queue, limit, output } => {
            let dead = offered(backend.inspect(), "dead list")?.dead_list(queue.as_deref(), limit).await?;
            if output.json {
                return print_json(&dead);
            }
            let rows: Vec<Vec<String>> =
                dead.into_iter().map(|d| vec![d.id, d.queue, d.task_id, d.deliveries.to_string(), d.reason]).collect();
            if rows.is_empty() {
                println!("no dead messages");
            } else {
                println!("{}", render(&["id", "queue", "task id", "deliveries", "reason"], &rows));
            }
        }
        DeadCommand::Retry { queue } => {
            let retried = offered(backend.control(), "dead retry")?.dead_retry(queue.as_deref()).await?;
            println!("requeued {}", count(retried, "dead message"))
        }
        DeadCommand::Purge { queue } => {
            let purged = offered(backend.control(), "dead purge")?.dead_purge(queue.as_deref()).await?;
            println!("deleted {}", count(purged, "dead message"))
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn stats(broker: &dyn WorkerRegistry, output: JsonArg) -> anyhow::Result<ExitCode> {
    let workers = broker.workers().await?;
    if output.json {
        return print_json(&workers);
    }
    if workers.is_empty() {
        println!("no workers have reported");
        return Ok(ExitCode::SUCCESS);
    }
    let now = chrono::Utc::now().timestamp_millis();
    let field = |stats: &Value, key: &str| stats.get(key).and_then(Value::as_u64).unwrap_or(0).to_string();
    let mut rows = Vec::new();
    let mut timings = Vec::new();
    for report @ artel_core::WorkerReport { name, heartbeat_at_ms, stats } in &workers {
        let age = now - heartbeat_at_ms;
        let state = if report.is_alive(now) { "alive".to_owned() } else { format!("silent {}s", age / 1000) };
        rows.push(vec![
            name.clone(),
            state,
            field(stats, "active"),
            field(stats, "received"),
            field(stats, "succeeded"),
            field(stats, "failed"),
            field(stats, "rejected"),
        ]);
        for (task, t) in stats.get("tasks").and_then(Value::as_object).into_iter().flatten() {
            let ms = |key: &str| t.get(key).and_then(Value::as_f64).map_or("-".to_owned(), |v| format!("{v:.3}"));
            let count = t.get("count").and_then(Value::as_u64).unwrap_or(0).to_string();
            timings.push(vec![
                name.clone(),
                task.clone(),
                count,
                ms("mean_ms"),
                ms("p50_ms"),
                ms("p99_ms"),
                ms("max_ms"),
            ]);
        }
    }
    println!("{}", render(&["worker", "state", "active", "received", "succeeded", "failed", "rejected"], &rows));
    if !timings.is_empty() {
        println!();
        println!("{}", render(&["worker", "task", "count", "mean ms", "p50 ms", "p99 ms", "max ms"], &timings));
    }
    Ok(ExitCode::SUCCESS)
}
