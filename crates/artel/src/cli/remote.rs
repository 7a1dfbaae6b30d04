//! `artel inspect` and `artel control`: Celery's remote-control commands, same names and
//! same replies, for workers on the native brokers (sqlite://, redis://, postgres://).
//! On Celery's layouts the same questions go through `celery inspect`/`celery control`.

use std::process::ExitCode;
use std::time::Duration;

use artel_core::worker::remote::{ControlBoard, ControlRequest, ask};
use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};

use super::Exit;
use crate::connect::Connection;

/// Questions `artel inspect` asks (Celery's `inspect` commands).
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
pub(crate) enum InspectMethod {
    /// Tasks running now.
    Active,
    /// Tasks received and not started (prefetched, or waiting for a rate limit).
    Reserved,
    /// Tasks received and waiting for their ETA.
    Scheduled,
    /// Ids of revoked tasks.
    Revoked,
    /// Names of the tasks each worker runs.
    Registered,
    /// Counters, pool and broker.
    Stats,
    /// The queues consumed.
    ActiveQueues,
    /// Each worker's settings (nothing secret).
    Conf,
    /// Each worker's logical clock.
    Clock,
    /// Each worker's version.
    Report,
    /// Whether each worker answers.
    Ping,
    /// Where the given task ids are: `query_task ID...`.
    QueryTask,
}

/// What `artel control` asks (Celery's `control` commands).
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
pub(crate) enum ControlMethod {
    /// `rate_limit TASK RATE` (`10/s`, `100/m`, `5/h`; 0 turns it off), in each worker.
    RateLimit,
    /// `time_limit TASK SOFT [HARD]` in seconds, in each worker.
    TimeLimit,
    /// `add_consumer QUEUE`: start consuming a queue too.
    AddConsumer,
    /// `cancel_consumer QUEUE`: stop consuming a queue.
    CancelConsumer,
    /// `pool_grow [N]`: run N more tasks at once.
    PoolGrow,
    /// `pool_shrink [N]`: run N fewer tasks at once.
    PoolShrink,
    /// `revoke ID...`: these tasks will not run.
    Revoke,
    /// `terminate SIGNAL ID...`: revoke and stop these tasks if running.
    Terminate,
    /// Turn task events on (brokers that carry events).
    EnableEvents,
    /// Turn task events off.
    DisableEvents,
    /// Stop after the running tasks finish (no reply).
    Shutdown,
    /// Whether each worker answers.
    Ping,
}

/// Who is asked, for how long, and how the replies are printed.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// Only these workers (node names, comma-separated or repeated); every worker when
    /// none is named.
    #[arg(short, long, value_delimiter = ',')]
    destination: Vec<String>,
    /// Seconds to wait for replies.
    #[arg(short, long, default_value_t = 1.0)]
    timeout: f64,
    /// One JSON object `{node: reply}`, as `celery inspect --json` prints.
    #[arg(long)]
    json: bool,
}

/// Options of `artel inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// What to ask.
    #[arg(value_enum)]
    method: InspectMethod,
    /// The task ids of `query_task`.
    args: Vec<String>,
    #[command(flatten)]
    target: Target,
}

/// Options of `artel control`.
#[derive(Debug, Args)]
pub(crate) struct ControlArgs {
    /// What to ask.
    #[arg(value_enum)]
    method: ControlMethod,
    /// The command's arguments, as `celery control` takes them.
    args: Vec<String>,
    #[command(flatten)]
    target: Target,
}

pub(crate) async fn inspect(connection: Connection, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let method = name(args.method);
    let arguments = match args.method {
        InspectMethod::QueryTask => {
            anyhow::ensure!(!args.args.is_empty(), "`artel inspect query_task` needs one or more task ids");
            json!({"ids": args.args})
        }
        _ => {
            anyhow::ensure!(args.args.is_empty(), "`artel inspect {method}` takes no arguments");
            json!({})
        }
    };
    send(&connection, &method, arguments, args.target).await
}

pub(crate) async fn control(connection: Connection, args: ControlArgs) -> anyhow::Result<ExitCode> {
    let method = name(args.method);
    let arguments = control_arguments(args.method, &args.args)
        .map_err(|usage| anyhow::anyhow!("`artel control {method}` takes {usage}"))?;
    if matches!(args.method, ControlMethod::Shutdown) {
        // A cast: workers stop without replying.
        let request = ControlRequest::encode(&method, &Map::new(), &args.target.destination, "");
        board(&connection)?.post_request(&request).await?;
        eprintln!("asked to shut down: {}", addressed(&args.target.destination));
        return Ok(ExitCode::SUCCESS);
    }
    send(&connection, &method, arguments, args.target).await
}

/// The arguments `method` takes from `args`, or what it takes.
fn control_arguments(method: ControlMethod, args: &[String]) -> Result<Value, &'static str> {
    let number = |text: &String| text.parse::<f64>().ok();
    Ok(match (method, args) {
        (ControlMethod::RateLimit, [task, rate]) => json!({"task_name": task, "rate_limit": rate}),
        (ControlMethod::RateLimit, _) => return Err("TASK RATE"),
        (ControlMethod::TimeLimit, [task, soft]) => {
            json!({"task_name": task, "soft": number(soft).ok_or("TASK SOFT [HARD], in seconds")?})
        }
        (ControlMethod::TimeLimit, [task, soft, hard]) => json!({
            "task_name": task, "soft": number(soft).ok_or("TASK SOFT [HARD], in seconds")?,
            "hard": number(hard).ok_or("TASK SOFT [HARD], in seconds")?,
        }),
        (ControlMethod::TimeLimit, _) => return Err("TASK SOFT [HARD], in seconds"),
        (ControlMethod::AddConsumer | ControlMethod::CancelConsumer, [queue]) => json!({"queue": queue}),
        (ControlMethod::AddConsumer | ControlMethod::CancelConsumer, _) => return Err("QUEUE"),
        (ControlMethod::PoolGrow | ControlMethod::PoolShrink, []) => json!({"n": 1}),
        (ControlMethod::PoolGrow | ControlMethod::PoolShrink, [n]) => {
            json!({"n": n.parse::<u32>().map_err(|_| "[N], a count")?})
        }
        (ControlMethod::PoolGrow | ControlMethod::PoolShrink, _) => return Err("[N], a count"),
        (ControlMethod::Revoke, ids) if !ids.is_empty() => json!({"task_id": ids}),
        (ControlMethod::Revoke, _) => return Err("one or more task ids"),
        (ControlMethod::Terminate, [_signal, ids @ ..]) if !ids.is_empty() => json!({"task_id": ids}),
        (ControlMethod::Terminate, _) => return Err("SIGNAL and one or more task ids"),
        (_, []) => json!({}),
        _ => return Err("no arguments"),
    })
}

/// Asks and prints the replies; status 3 when nobody replied in time.
async fn send(connection: &Connection, method: &str, arguments: Value, target: Target) -> anyhow::Result<ExitCode> {
    let board = board(connection)?;
    anyhow::ensure!(
        target.timeout.is_finite() && target.timeout > 0.0,
        "--timeout must be a number of seconds above 0"
    );
    let arguments = match arguments {
        Value::Object(arguments) => arguments,
        _ => Map::new(),
    };
    let timeout = Duration::from_secs_f64(target.timeout.min(3600.0));
    let replies = ask(board, method, &arguments, &target.destination, timeout).await?;
    if replies.is_empty() {
        return Err(Exit::TimedOut(format!(
            "no worker replied within {} s ({}): are workers running on this broker?",
            target.timeout,
            addressed(&target.destination)
        ))
        .into());
    }
    if target.json {
        println!("{}", Value::Object(replies.into_iter().collect()));
        return Ok(ExitCode::SUCCESS);
    }
    let count = replies.len();
    for (node, reply) in replies {
        println!("->  {node}: OK");
        for line in serde_json::to_string_pretty(&reply)?.lines() {
            println!("    {line}");
        }
    }
    println!("\n{count} {} online.", if count == 1 { "node" } else { "nodes" });
    Ok(ExitCode::SUCCESS)
}

/// The broker's remote-control board, or where to ask instead.
fn board(connection: &Connection) -> anyhow::Result<&dyn ControlBoard> {
    connection.backend.control_board().map(|board| board.as_ref()).ok_or_else(|| {
        anyhow::anyhow!(
            "`artel inspect` and `artel control` work on sqlite://, redis:// and postgres://; on Celery's layouts \
             (celery+redis://, amqp://) artel workers answer `celery inspect` and `celery control`"
        )
    })
}

/// Who a request went to, for messages.
fn addressed(destination: &[String]) -> String {
    match destination {
        [] => "every worker".to_owned(),
        nodes => nodes.join(", "),
    }
}

/// A method's name as Celery spells it.
fn name(method: impl ValueEnum) -> String {
    method.to_possible_value().map(|value| value.get_name().to_owned()).unwrap_or_default()
}
