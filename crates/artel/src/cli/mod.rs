//! The `artel` command line, for the built-in tasks and for yours:
//! `fn main() -> ExitCode { artel::cli::main(my_registry()) }`.

mod admin;
mod beat;
mod dashboard;
mod failed;
mod map;
mod remote;
mod send;
mod supervise;
pub mod table;
mod tasks;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::Registry;
use crate::connect::{DEFAULT_BROKER, connect};

/// artel: a task queue and local pools; the embedded SQLite broker needs no server.
#[derive(Debug, Parser)]
#[command(
    name = "artel",
    version,
    about,
    after_help = "Exit status: 0 success; 1 a task or check failed; 2 bad usage or broker error; 3 timed out waiting; \
                  4 the task has not finished (artel result)."
)]
struct Cli<E: Extra> {
    /// Broker URL: sqlite://PATH (embedded; default sqlite://artel.db), redis://HOST:PORT/DB
    /// (rediss:// over TLS, redis+sentinel://S1,S2/MASTER/DB through Sentinel,
    /// redis+cluster://H1:P1,H2:P2 sharded over a Redis Cluster),
    /// postgres://USER@HOST:5432/DB?schema=artel, or Celery's own layouts:
    /// celery+redis://HOST:PORT/DB, amqp://USER:PASS@HOST:5672//?results=redis://HOST:PORT/DB
    /// (amqps:// over TLS; on both, `sent_events=true` sends Celery's task-sent events). `demo` and `bench broker` (in the `artel` binary) use a scratch
    /// SQLite file unless one is given.
    #[arg(long, global = true, env = "ARTEL_BROKER")]
    broker: Option<String>,
    /// Log level of artel's own crates (other crates log warnings and errors); RUST_LOG,
    /// when set, is the whole filter instead. Logs go to standard error.
    #[arg(long, global = true, env = "ARTEL_LOG_LEVEL", default_value = "info",
          value_parser = clap::builder::PossibleValuesParser::new(crate::logging::LEVELS))]
    log_level: String,
    /// Log lines as readable text or as one JSON object per line.
    #[arg(long, global = true, env = "ARTEL_LOG_FORMAT", value_enum, default_value_t = crate::logging::LogFormat::Text)]
    log_format: crate::logging::LogFormat,
    #[command(subcommand)]
    command: Command<E>,
}

/// Commands a binary adds to artel's own (the `artel` binary adds `demo` and `bench`),
/// run with the `--broker` given, if any, before any runtime is started.
pub trait Extra: Subcommand + std::fmt::Debug {
    /// Runs the command.
    fn run(self, broker: Option<&str>) -> anyhow::Result<ExitCode>;

    /// Functions the commands run in process-pool children, beside the tasks.
    fn child_functions() -> artel_pool::Functions {
        artel_pool::Functions::new()
    }
}

/// No commands beyond artel's own.
#[derive(Debug, Subcommand)]
pub enum NoExtra {}

impl Extra for NoExtra {
    fn run(self, _: Option<&str>) -> anyhow::Result<ExitCode> {
        match self {}
    }
}

#[derive(Debug, Subcommand)]
enum Command<E: Extra> {
    #[command(flatten)]
    Broker(BrokerCommand),
    #[command(flatten)]
    Extra(E),
    /// Run the services a TOML file lists (artel workers, beat, any command), N copies
    /// each, restarted when they exit; SIGHUP re-reads the file. `status` lists them.
    Supervise(supervise::SuperviseArgs),
    /// Call a task once per item of a file (lines, JSON Lines, CSV) in this process,
    /// --concurrency at a time, rate-limited, retried, one JSON line per item out;
    /// --resume after a crash.
    Map(Box<map::MapArgs>),
    /// List the tasks this binary's workers can run, with their parameters and options.
    Tasks {
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `artel completions bash > /etc/bash_completion.d/artel`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Commands that talk to the broker.
#[derive(Debug, Subcommand)]
enum BrokerCommand {
    /// Run a worker: consume queues and run tasks until SIGTERM/SIGINT (twice: stop now).
    Worker(Box<worker::WorkerArgs>),
    /// Send periodic tasks from a schedule file (intervals, cron in a time zone); edits to
    /// the file are picked up without a restart. --list shows the next fire times.
    Beat(beat::BeatArgs),
    /// Serve the web dashboard: queues, tasks, dead letters, workers, live; a JSON API
    /// under /api/ and queue depths for Prometheus on /metrics.
    Dashboard(dashboard::DashboardArgs),
    /// Send a task; with --wait, print its result.
    Call(Box<send::CallArgs>),
    /// Show (or wait for) a task's result.
    Result(send::ResultArgs),
    /// Revoke tasks: not started ones never run, with --terminate running ones stop.
    Revoke(send::RevokeArgs),
    /// Queue lengths: ready, delayed, held by workers, dead.
    Queues(admin::JsonArg),
    /// Delete the waiting messages of a queue.
    Purge(admin::PurgeArgs),
    /// Inspect, retry or purge dead-lettered messages.
    #[command(subcommand)]
    Dead(admin::DeadCommand),
    /// Workers' heartbeats, counters and per-task run times.
    Stats(admin::JsonArg),
    /// List or run again tasks that failed for good (after their retries).
    #[command(subcommand)]
    Failed(failed::FailedCommand),
    /// Ask running workers (Celery's `inspect`, same names and replies): active,
    /// reserved, scheduled, registered, stats, conf, query_task... On celery+redis://
    /// and amqp:// use `celery inspect`.
    Inspect(remote::InspectArgs),
    /// Manage the shared cache: `clear` deletes memoized results (all, or --task's).
    #[command(subcommand)]
    Cache(admin::CacheCommand),
    /// Tell running workers (Celery's `control`): rate_limit, time_limit, add_consumer,
    /// cancel_consumer, pool_grow, pool_shrink, revoke, shutdown... On celery+redis://
    /// and amqp:// use `celery control`.
    Control(remote::ControlArgs),
}

/// A token cancelled by the first SIGINT or SIGTERM.
fn stop_on_signals() -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    let signals = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        signals.cancel();
    });
    if let Ok(mut terminate) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        let signals = stop.clone();
        tokio::spawn(async move {
            terminate.recv().await;
            signals.cancel();
        });
    }
    stop
}

/// A queue name as given to `-Q`: not empty, no surrounding spaces.
fn queue_name(name: &str) -> Result<String, String> {
    if name.trim().is_empty() {
        return Err("a queue name cannot be empty (the default queue is `celery`)".to_owned());
    }
    if name.trim() != name {
        return Err(format!("queue name {name:?} has spaces around it"));
    }
    Ok(name.to_owned())
}

/// Outcomes with their own exit status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Exit {
    /// A task failed (status 1).
    #[error("{0}")]
    TaskFailed(String),
    /// Waiting timed out (status 3).
    #[error("{0}")]
    TimedOut(String),
}

/// Parses the command line, runs the command with `registry`'s tasks plus the built-in
/// ones (`noop`, `echo`, `sleep`, `exec`; yours win on a name clash), and returns the
/// exit status.
pub fn main(registry: Registry) -> ExitCode {
    main_with::<NoExtra>(registry)
}

/// Lifts the soft limit on open files to the hard one, as Go programs do: thousands of
/// connections in flight (`artel map -c 10000`, a busy worker) need more than the usual
/// 1,024, and the hard limit is what the administrator allows.
fn raise_open_files_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(%error, "could not raise the open files limit");
        }
    }
}

/// [`main`] with the binary's own commands `E` beside artel's.
pub fn main_with<E: Extra>(registry: Registry) -> ExitCode {
    let mut tasks = crate::builtins::registry();
    tasks.extend(registry);
    // Started by a worker's process pool: run its tasks (with the built-ins it enabled),
    // then exit.
    if let Some(enabled) = std::env::var_os(worker::CHILD_ENABLE) {
        for name in enabled.to_string_lossy().split(',').filter(|n| !n.is_empty()) {
            let _ = crate::builtins::enable(&mut tasks, name);
        }
    }
    artel_pool::serve_if_child(&artel_runtime::child_functions(&tasks).merge(E::child_functions()));
    let cli = Cli::<E>::parse();
    if let Err(error) = crate::logging::init(&cli.log_level, cli.log_format) {
        return report(&anyhow::anyhow!(error));
    }
    raise_open_files_limit();
    let command = match cli.command {
        Command::Broker(command) => command,
        Command::Map(args) => {
            return map::run(*args, tasks, cli.broker.as_deref()).unwrap_or_else(|error| report(&error));
        }
        Command::Tasks { json } => return tasks::list(&tasks, json).unwrap_or_else(|error| report(&error)),
        Command::Supervise(args) => return supervise::run(args).unwrap_or_else(|error| report(&error)),
        Command::Completions { shell } => {
            let mut command = <Cli<E> as clap::CommandFactory>::command();
            let name = std::env::args()
                .next()
                .and_then(|exe| std::path::Path::new(&exe).file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "artel".to_owned());
            clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        // These manage their own runtimes and processes.
        Command::Extra(command) => return command.run(cli.broker.as_deref()).unwrap_or_else(|error| report(&error)),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("artel: error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let broker = cli.broker.as_deref().unwrap_or(DEFAULT_BROKER);
    match runtime.block_on(run(broker, command, tasks)) {
        Ok(code) => code,
        Err(error) => report(&error),
    }
}

fn report(error: &anyhow::Error) -> ExitCode {
    if error
        .chain()
        .any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
    {
        return ExitCode::SUCCESS;
    }
    eprintln!("artel: error: {}", describe(error));
    match error.downcast_ref::<Exit>() {
        Some(Exit::TaskFailed(_)) => ExitCode::from(1),
        Some(Exit::TimedOut(_)) => ExitCode::from(3),
        None => ExitCode::from(2),
    }
}

/// The error and its causes, each said once: a cause whose text the layer above already
/// included is not repeated.
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let said = cause.to_string();
        if text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

async fn run(url: &str, command: BrokerCommand, tasks: Registry) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !url.starts_with("memory://"),
        "memory:// lives inside one process, so a worker or a call started from the command line would have \
         a queue of its own that nothing else sees: use sqlite://artel.db (no server) or redis://HOST:6379/0"
    );
    if let BrokerCommand::Call(args) = &command {
        send::check(args)?;
    }
    let connection = connect(url).await?;
    match command {
        BrokerCommand::Worker(args) => worker::run(connection, url, tasks, *args).await,
        BrokerCommand::Beat(args) => beat::run(connection, args).await,
        BrokerCommand::Dashboard(args) => dashboard::run(connection, url, args).await,
        BrokerCommand::Call(args) => send::call(connection, *args).await,
        BrokerCommand::Result(args) => send::result(connection, args).await,
        BrokerCommand::Revoke(args) => send::revoke(connection, args).await,
        BrokerCommand::Queues(output) => {
            admin::queues(admin::offered(connection.backend.inspect(), "queues")?, output).await
        }
        BrokerCommand::Purge(args) => admin::purge(connection, args).await,
        BrokerCommand::Dead(command) => admin::dead(&connection.backend, command).await,
        BrokerCommand::Stats(output) => {
            admin::stats(admin::offered(connection.backend.workers(), "stats")?, output).await
        }
        BrokerCommand::Failed(command) => {
            let store = connection.backend.failed().ok_or_else(|| {
                anyhow::anyhow!("`artel failed` needs a sqlite:// or redis:// broker (this one keeps no failed tasks)")
            })?;
            failed::failed(store.as_ref(), command).await
        }
        BrokerCommand::Inspect(args) => remote::inspect(connection, args).await,
        BrokerCommand::Control(args) => remote::control(connection, args).await,
        BrokerCommand::Cache(command) => admin::cache(&connection.backend, command).await,
    }
}
