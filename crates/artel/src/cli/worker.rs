//! `artel worker`: run tasks from the broker until told to stop.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use artel_pool::Pool;
use artel_runtime::{Stop, WorkerConfig};
use clap::Args;

use crate::connect::Connection;
use crate::{Registry, WorkerSetupError};

/// Options of `artel worker`.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// Queues to consume, most important first (comma-separated).
    #[arg(short = 'Q', long, value_delimiter = ',', default_value = artel_core::DEFAULT_QUEUE, value_parser = super::queue_name)]
    queues: Vec<String>,
    /// Tasks running at once.
    #[arg(short = 'c', long, default_value_t = 100)]
    concurrency: usize,
    /// Messages fetched ahead of a free slot (default: the concurrency).
    #[arg(long)]
    prefetch: Option<usize>,
    /// Worker name shown by `artel stats` (default: artel.<pid>@<host>).
    #[arg(short = 'n', long)]
    name: Option<String>,
    /// Seconds running tasks get to finish after SIGTERM/SIGINT; then they are stopped and
    /// their messages go back to the queue (a blocking task's once this process exits).
    #[arg(long, default_value_t = 30)]
    grace: u64,
    /// Exit once the queues are empty and nothing is running (like RQ's burst mode).
    #[arg(long)]
    burst: bool,
    /// Store STARTED when a task starts (Celery's task_track_started; one more write per task).
    #[arg(long)]
    track_started: bool,
    /// Keep no task history (the dashboard's task lists: each task's latest state, written
    /// in batches; on by default where the broker keeps one).
    #[arg(long)]
    no_history: bool,
    /// Store RECEIVED when a task is taken off the queue (one more write per task).
    #[arg(long)]
    track_received: bool,
    /// Hard time limit in seconds for tasks that set none (Celery's --time-limit).
    #[arg(long)]
    time_limit: Option<f64>,
    /// Soft time limit in seconds for tasks that set none (Celery's --soft-time-limit).
    #[arg(long)]
    soft_time_limit: Option<f64>,
    /// How often to read revocations, in milliseconds: the longest a revoke takes to arrive.
    #[arg(long, default_value_t = 200)]
    revoke_poll_ms: u64,
    /// Keep results this many seconds (Celery's result_expires); 0 keeps them for good.
    #[arg(long, default_value_t = artel_core::RESULT_EXPIRES.as_secs(), value_name = "SECONDS")]
    result_expires: u64,
    /// Dead-letter a message (as WorkerLostError) once it was delivered this many times and
    /// its worker died each time (crash, out of memory, kill), instead of letting it take
    /// down every worker in turn; tasks may set their own (`max_deliveries`). 0: never.
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_deliveries: u32,
    /// Dead-letter messages whose body is larger than this many MiB, unread.
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    max_message_size: usize,
    /// Run at most N messages of one group (a tenant's `--group` / `group_key`) at once
    /// across every worker (set it alike on all), for tasks that declare no
    /// `max_running_per_group`; a run over it is published again for later. 1 to 64.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    max_running_per_group: Option<u32>,
    /// Turn on built-in tasks that are off by default because they act for whoever can
    /// publish: `exec` (runs any program on this machine), `http` (sends requests from this
    /// network). Comma-separated; enable them only where every producer is trusted.
    #[arg(long, value_delimiter = ',', value_name = "TASKS")]
    enable: Vec<String>,
    /// Send task events for monitors such as Flower (Celery's -E; celery+redis:// or
    /// amqp://). `celery control enable_events`/`disable_events` turn them on and off later.
    #[arg(short = 'E', long)]
    events: bool,
    /// Send no worker-online, heartbeat or worker-offline events (sent by default on
    /// celery+redis:// and amqp://, as a Celery worker does, so Flower and exporters see it).
    #[arg(long)]
    without_heartbeat: bool,
    /// Serve Prometheus metrics on this address (`GET /metrics`), e.g. 127.0.0.1:9808;
    /// names and labels in docs/metrics.md.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Where tasks run: `local` (this process's async tasks and threads) or `processes`
    /// (every task in one of --concurrency child processes: a crash, a leak or a runaway
    /// loop takes down only its child, which is replaced). Tasks declared `process` run in
    /// children either way.
    #[arg(long, value_enum, default_value = "local")]
    pool: PoolKind,
    /// With child processes: replace a child after this many tasks (Celery's
    /// --max-tasks-per-child).
    #[arg(long, value_name = "N")]
    max_tasks_per_child: Option<u32>,
    /// With child processes: replace a child whose resident memory is past this after a
    /// task, e.g. `200MiB`, `1GiB`, `500MB` (Celery's --max-memory-per-child).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_memory_per_child: Option<u64>,
    /// Run a Python Celery app's tasks instead of this binary's: `MODULE:APP` as
    /// `celery -A` takes it, imported from the current directory in --concurrency Python
    /// child processes (implies --pool processes). The worker does the broker, acks,
    /// retries, limits, events and remote control.
    #[arg(long, value_name = "MODULE:APP")]
    python: Option<String>,
    /// The Python interpreter of --python: one with the app's packages (a virtualenv's
    /// bin/python).
    #[arg(long, value_name = "PATH", default_value = "python3", requires = "python")]
    python_exe: std::path::PathBuf,
}

/// Tells a worker's children which guarded built-ins the worker enabled (`--enable`).
pub(crate) const CHILD_ENABLE: &str = "ARTEL_CHILD_ENABLE";

/// Tasks a `--python` worker keeps in flight per child process.
const CALLS_PER_PYTHON_CHILD: usize = 8;

/// Tells a worker's children its node name (a Python task's `self.request.hostname`).
const CHILD_WORKER_NAME: &str = "ARTEL_WORKER_NAME";

/// Where `artel worker` runs tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PoolKind {
    /// In this process.
    Local,
    /// In child processes.
    Processes,
}

/// A size such as `200MiB`, `1GiB`, `500MB`, `64KB` or a plain number of bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("`{text}` is not a size (e.g. 200MiB)"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit `{other}` in `{text}` (use B, KB, MB, GB, KiB, MiB, GiB)")),
    };
    let bytes = number * scale;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{text}` is not a size this worker can use"));
    }
    Ok(bytes as u64)
}

fn limit(seconds: Option<f64>, flag: &str) -> anyhow::Result<Option<Duration>> {
    seconds
        .map(|s| {
            Duration::try_from_secs_f64(s).with_context(|| format!("{flag} must be a non-negative number of seconds"))
        })
        .transpose()
}

pub(crate) async fn run(
    connection: Connection,
    url: &str,
    mut tasks: Registry,
    args: WorkerArgs,
) -> anyhow::Result<ExitCode> {
    for name in &args.enable {
        crate::builtins::enable(&mut tasks, name).map_err(anyhow::Error::msg)?;
    }
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let name = args.name.clone().unwrap_or_else(artel_runtime::default_worker_name);
    // Kept until the worker stops: its directory holds the children's module.
    let python = match &args.python {
        Some(spec) => {
            anyhow::ensure!(args.enable.is_empty(), "--enable: a --python worker runs only the Python app's tasks");
            let app = crate::python::PythonApp::load(spec, &args.python_exe)?;
            tracing::info!(app = %spec, tasks = %app.names().join(", "), "running a Python Celery app's tasks");
            tasks = app.registry();
            Some(app)
        }
        None => None,
    };
    let in_children = args.pool == PoolKind::Processes || python.is_some();
    // Python children take their calls in batches: calls queued for them keep each busy
    // without a round trip to the worker between two tasks.
    let running =
        if python.is_some() { args.concurrency.saturating_mul(CALLS_PER_PYTHON_CHILD) } else { args.concurrency };
    let mut env = vec![(CHILD_ENABLE.to_owned(), args.enable.join(","))];
    env.push((CHILD_WORKER_NAME.to_owned(), name.clone()));
    #[cfg_attr(not(feature = "otel"), allow(unused_mut))]
    let mut config = WorkerConfig {
        name: Some(name),
        queues: args.queues.clone(),
        concurrency: running,
        prefetch: args.prefetch.unwrap_or(running),
        grace: Duration::from_secs(args.grace),
        track_started: args.track_started,
        history: !args.no_history,
        track_received: args.track_received,
        time_limit: limit(args.time_limit, "--time-limit")?,
        soft_time_limit: limit(args.soft_time_limit, "--soft-time-limit")?,
        revoke_poll: Duration::from_millis(args.revoke_poll_ms.max(1)),
        result_ttl: (args.result_expires > 0).then(|| Duration::from_secs(args.result_expires)),
        max_deliveries: args.max_deliveries,
        max_message_bytes: args.max_message_size.saturating_mul(1 << 20),
        max_running_per_group: args.max_running_per_group,
        processes: in_children.then(|| artel_runtime::ProcessSettings {
            all_tasks: true,
            processes: args.concurrency,
            max_tasks_per_child: args.max_tasks_per_child,
            max_memory_per_child: args.max_memory_per_child,
            env,
            program: python.as_ref().map(crate::python::PythonApp::program),
        }),
        ..WorkerConfig::default()
    };
    // Task spans over OTLP when the OTEL_* variables ask for them.
    #[cfg(feature = "otel")]
    let spans = artel_otel::from_env().map_err(anyhow::Error::msg)?;
    #[cfg(feature = "otel")]
    if let Some(provider) = &spans {
        let sink = std::sync::Arc::new(artel_otel::TaskSpans::new(provider));
        config.events = Some(artel_core::events::also(config.events.take(), sink));
    }
    let names = tasks.names().join(", ");
    let builder = connection.worker(tasks, config).burst(args.burst).events(args.events).metrics(args.metrics);
    let builder = builder.heartbeats(!args.without_heartbeat);
    let worker = builder.build().map_err(|e| {
        let flag = match e {
            WorkerSetupError::BurstUnsupported => "--burst",
            _ => "--events",
        };
        anyhow::anyhow!("{flag}: {e}")
    })?;
    let (name, stats) = (worker.name().to_owned(), worker.stats());
    let pool = Pool::builder().on_runtime(tokio::runtime::Handle::current()).build().context("starting the pool")?;
    let stop = Stop::default();
    let off: Vec<&str> = crate::builtins::GUARDED
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| python.is_none() && !args.enable.iter().any(|e| e == name))
        .collect();
    tracing::info!(
        worker = %name,
        queues = %args.queues.join(","),
        concurrency = args.concurrency,
        broker = %artel_core::redact_url(url),
        tasks = %names,
        "worker started{}",
        if off.is_empty() { String::new() } else { format!(" ({} off: start with --enable {} to run them)", off.join(", "), off.join(",")) }
    );
    tokio::spawn(signals(stop.clone()));
    let outcome = worker.run(&pool, stop).await.context("the broker failed");
    #[cfg(feature = "otel")]
    if let Some(provider) = spans {
        // The last spans leave before the process does.
        if let Err(error) = provider.shutdown() {
            tracing::warn!(%error, "could not export the last task spans");
        }
    }
    outcome?;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    tracing::info!(
        worker = %name,
        received = load(&stats.received),
        succeeded = load(&stats.succeeded),
        failed = load(&stats.failed),
        rejected = load(&stats.rejected),
        "worker stopped"
    );
    Ok(ExitCode::SUCCESS)
}

/// First SIGTERM/SIGINT: warm stop. Second: cold stop.
async fn signals(stop: Stop) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT; stop the worker with SIGKILL");
        return;
    };
    let next = async {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    };
    next.await;
    tracing::warn!("stopping: finishing running tasks (signal again to stop now)");
    stop.warm.cancel();
    let next = async {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    };
    next.await;
    tracing::warn!("stopping now: running tasks are stopped, then their messages go back to the queue");
    stop.cold.cancel();
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes_read_binary_and_decimal_units_and_refuse_nonsense() {
        assert_eq!(parse_size("200MiB"), Ok(200 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("12 parsecs").expect_err("unit").contains("unknown size unit"));
        assert!(parse_size("0").is_err());
    }
}
