//! `artel worker`: run tasks from the broker until told to stop.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use artel_pool::Pool;
use artel_runtime::{Stop, Worker, WorkerConfig, WorkerStats};
use clap::Args;

use crate::Registry;
use crate::connect::Connection;

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
    /// Dead-letter a message (as WorkerLostError) once it was delivered this many times and
    /// its worker died each time (crash, out of memory, kill), instead of letting it take
    /// down every worker in turn; tasks may set their own (`max_deliveries`). 0: never.
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_deliveries: u32,
    /// Dead-letter messages whose body is larger than this many MiB, unread.
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    max_message_size: usize,
    /// Turn on built-in tasks that are off by default because they act for whoever can
    /// publish: `exec` (runs any program on this machine), `http` (sends requests from this
    /// network). Comma-separated; enable them only where every producer is trusted.
    #[arg(long, value_delimiter = ',', value_name = "TASKS")]
    enable: Vec<String>,
    /// Send task and worker events for monitors such as Flower (Celery's -E; celery+redis:// or amqp://).
    #[arg(short = 'E', long)]
    events: bool,
}

fn limit(seconds: Option<f64>, flag: &str) -> anyhow::Result<Option<Duration>> {
    seconds
        .map(|s| {
            Duration::try_from_secs_f64(s).with_context(|| format!("{flag} must be a non-negative number of seconds"))
        })
        .transpose()
}

/// How often the worker records its heartbeat and stats.
const HEARTBEAT: Duration = Duration::from_secs(2);

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
    anyhow::ensure!(
        !args.burst || connection.inspect.is_some(),
        "--burst needs a broker that can count unfinished messages (sqlite:// or redis://)"
    );
    let name =
        args.name.clone().unwrap_or_else(|| format!("artel.{}@{}", std::process::id(), artel_runtime::hostname()));
    anyhow::ensure!(
        !args.events || connection.wire.is_some(),
        "--events needs a celery+redis:// or amqp:// broker (events go where Celery's monitors listen)"
    );
    let events = match (&connection.wire, args.events) {
        (Some(wire), true) => Some(artel_celery::EventPublisher::new(wire.clone(), name.clone())),
        _ => None,
    };
    let config = WorkerConfig {
        name: Some(name.clone()),
        queues: args.queues.clone(),
        concurrency: args.concurrency,
        prefetch: args.prefetch.unwrap_or(args.concurrency),
        grace: Duration::from_secs(args.grace),
        results_in_broker: connection.results_in_broker(),
        track_started: args.track_started,
        track_received: args.track_received,
        time_limit: limit(args.time_limit, "--time-limit")?,
        soft_time_limit: limit(args.soft_time_limit, "--soft-time-limit")?,
        revoke_poll: Duration::from_millis(args.revoke_poll_ms.max(1)),
        max_deliveries: args.max_deliveries,
        max_message_bytes: args.max_message_size.saturating_mul(1 << 20),
        events: events.as_ref().map(|(publisher, _)| publisher.clone() as Arc<dyn artel_runtime::EventSink>),
        ..WorkerConfig::default()
    };
    let names = tasks.names().join(", ");
    let worker = Worker::new(connection.broker.clone(), connection.backend.clone(), Arc::new(tasks), config);
    let stats = worker.stats();
    let pool = Pool::builder().on_runtime(tokio::runtime::Handle::current()).build().context("starting the pool")?;
    let stop = Stop::default();
    let off: Vec<&str> = crate::builtins::GUARDED
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !args.enable.iter().any(|e| e == name))
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
    if let Some(admin) = connection.admin.clone() {
        tokio::spawn(heartbeat(admin, name.clone(), stats.clone(), stop.clone()));
    }
    if let (true, Some(inspect)) = (args.burst, connection.inspect.clone()) {
        tokio::spawn(burst(inspect, args.queues.clone(), stats.clone(), stop.clone()));
    }
    // On Celery's layout: answer `celery inspect` / `control` and publish events.
    let done = tokio_util::sync::CancellationToken::new();
    let mut helpers = Vec::new();
    if let Some(wire) = connection.wire.clone() {
        let publisher = events.as_ref().map(|(publisher, _)| publisher.clone());
        let control = artel_celery::serve_remote_control(
            wire,
            name.clone(),
            worker.control(),
            publisher,
            stop.clone(),
            done.clone(),
        );
        helpers.push(tokio::spawn(async move {
            if let Err(e) = control.await {
                tracing::error!(error = %e, "remote control stopped");
            }
        }));
    }
    if let Some((_, event_loop)) = events {
        helpers.push(tokio::spawn(event_loop.run(stats.clone(), done.clone())));
    }
    let outcome = worker.run(&pool, stop).await;
    done.cancel();
    for helper in helpers {
        let _ = helper.await;
    }
    outcome.context("the broker failed")?;
    if let Some(admin) = &connection.admin {
        let _ = admin.worker_gone(&name).await;
    }
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

async fn heartbeat(broker: Arc<dyn artel_core::Admin>, name: String, stats: Arc<WorkerStats>, stop: Stop) {
    loop {
        if let Err(error) = broker.report_worker(&name, &stats.to_json()).await {
            tracing::warn!(%error, "could not record the worker heartbeat");
        }
        tokio::select! {
            _ = stop.warm.cancelled() => return,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
}

/// Stops the worker once its queues hold nothing ready or delayed and nothing runs.
async fn burst(broker: Arc<dyn artel_core::Inspect>, queues: Vec<String>, stats: Arc<WorkerStats>, stop: Stop) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut waiting = 0;
        for queue in &queues {
            waiting += broker.unfinished(queue, 1).await.unwrap_or(1);
        }
        if waiting == 0 && stats.active.load(Ordering::Relaxed) == 0 {
            stop.warm.cancel();
            return;
        }
    }
}
