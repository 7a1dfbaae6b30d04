//! `artel bench dashboard`: how fast the dashboard answers with a full store — a million
//! finished tasks (results, and task records through the bounded history) — measured
//! over HTTP against the dashboard served in this process.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use artel::core::{Clock, Minute, State, SystemClock, TaskRecord, TaskResult};
use artel::dashboard::{Access, Dashboard, DashboardConfig};
use clap::Args;
use futures_util::{StreamExt, stream};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::child::Namespace;
use artel::cli::table::render;

/// Options of `artel bench dashboard`.
#[derive(Debug, Args)]
pub(crate) struct DashboardArgs {
    /// Finished tasks in the store (results and task records).
    #[arg(long, default_value_t = 1_000_000)]
    tasks: u64,
    /// Requests per endpoint.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Exit with status 1 unless the overview's p99 is under this many milliseconds.
    #[arg(long)]
    check_ms: Option<f64>,
}

/// Results and records written at once.
const BATCH: u64 = 5_000;

pub(crate) fn run(args: &DashboardArgs, broker: Option<&str>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.tasks > 0 && args.requests > 0, "--tasks and --requests must be at least 1");
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(bench(args, broker))
}

async fn bench(args: &DashboardArgs, broker: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut space = Namespace::new("bench-dashboard", broker)?;
    println!("broker: {}", space.describe());
    let measured = async {
        let connection = space.open().await?;
        let backend = connection.backend.clone();
        let history = backend.history().cloned().context("this broker keeps no task history")?;

        let bar = ProgressBar::new(args.tasks).with_style(
            ProgressStyle::with_template("filling {bar:40} {pos}/{len} tasks, {per_sec}, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let now = SystemClock.now();
        let hour_ago = now.timestamp_millis() - 3_600_000;
        let mut written = 0;
        while written < args.tasks {
            let n = BATCH.min(args.tasks - written);
            let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
            let results = backend.results().clone();
            stream::iter(ids.iter().cloned())
                .map(|id| {
                    let results = results.clone();
                    async move { results.store(&TaskResult::success(&id, serde_json::json!(id.len()), now), None).await }
                })
                .buffer_unordered(64)
                .for_each(|stored| async move {
                    if let Err(error) = stored {
                        tracing::warn!(%error, "storing a result");
                    }
                })
                .await;
            let records: Vec<TaskRecord> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let at = hour_ago + ((written + i as u64) * 3_600_000 / args.tasks) as i64;
                    record(id, if (written + i as u64) % 50 == 0 { State::Failure } else { State::Success }, at)
                })
                .collect();
            history.record(&records).await?;
            written += n;
            bar.set_position(written);
        }
        bar.finish_and_clear();

        let config = DashboardConfig {
            listen: "127.0.0.1:0".parse().context("address")?,
            access: Access::Open,
            broker: space.describe(),
            schedules: None,
        };
        let dashboard = Dashboard::bind(backend, config).await.map_err(anyhow::Error::msg)?;
        let base = format!("http://{}", dashboard.local_addr()?);
        let stop = CancellationToken::new();
        let server = tokio::spawn(dashboard.serve(stop.clone()));
        let client = reqwest::Client::new();
        let mut rows = Vec::new();
        let mut overview_p99 = Duration::ZERO;
        for (name, path) in [
            ("overview", "/api/overview"),
            ("recent tasks", "/api/tasks?limit=100"),
            ("failed tasks", "/api/tasks?state=FAILURE&limit=100"),
            ("queues", "/api/queues"),
        ] {
            let mut samples = Vec::with_capacity(args.requests);
            let mut bytes = 0;
            for _ in 0..args.requests + 5 {
                let started = Instant::now();
                let response = client.get(format!("{base}{path}")).send().await?.error_for_status()?;
                bytes = response.bytes().await?.len();
                samples.push(started.elapsed());
            }
            samples.drain(..5);
            samples.sort_unstable();
            let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
            if name == "overview" {
                overview_p99 = pick(0.99);
            }
            let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
            rows.push(vec![
                name.to_owned(),
                path.to_owned(),
                ms(pick(0.5)),
                ms(pick(0.99)),
                ms(pick(1.0)),
                bytes.to_string(),
            ]);
        }
        stop.cancel();
        let _ = server.await;
        println!("{} finished tasks in the store; {} requests per endpoint", args.tasks, args.requests);
        println!("{}", render(&["endpoint", "path", "p50", "p99", "max", "bytes"], &rows));
        drop(connection);
        Ok::<_, anyhow::Error>(overview_p99)
    }
    .await;
    // Whatever happened, the scratch namespace goes.
    space.remove().await;
    let overview_p99 = measured?;
    Ok(match args.check_ms {
        Some(limit) if overview_p99.as_secs_f64() * 1e3 > limit => {
            eprintln!("check: overview p99 {overview_p99:?} is over {limit} ms: FAIL");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    })
}

fn record(id: &str, state: State, at_ms: i64) -> TaskRecord {
    TaskRecord {
        task_id: id.to_owned(),
        task: "bench.add".to_owned(),
        queue: "celery".to_owned(),
        state,
        worker: "bench@localhost".to_owned(),
        args: "(2, 3)".to_owned(),
        error: (state == State::Failure).then(|| "RuntimeError: boom".to_owned()),
        retries: 0,
        parent_id: None,
        root_id: Some(id.to_owned()),
        sent_at_ms: Some(at_ms - 4),
        received_at_ms: Some(at_ms - 3),
        started_at_ms: Some(at_ms - 2),
        updated_at_ms: Minute::start(at_ms).max(at_ms),
        runtime_ms: Some(2),
    }
}
