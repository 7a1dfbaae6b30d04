//! `artel demo`: many simulated I/O calls, through a worker process on the embedded
//! broker (default) or through the local async pool (`--local`).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use artel::core::{Clock, Signature, SystemClock};
use artel::pool::Pool;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::child::{Namespace, Worker};
use artel::cli::table::render;

/// Options of `artel demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Number of simulated calls.
    #[arg(long, default_value_t = 10_000)]
    calls: u64,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 1_000)]
    concurrency: usize,
    /// Latency of each simulated call, in milliseconds.
    #[arg(long, default_value_t = 100)]
    latency_ms: u64,
    /// Run the calls on the local async pool in this process instead of a worker process.
    #[arg(long)]
    local: bool,
}

const QUEUE: &str = "demo";

/// Runs the demo on the local pool (`--local`), or through a worker process on `broker`
/// (`--broker`: sqlite:// or redis://), by default a scratch SQLite file.
pub(crate) fn run(args: &DemoArgs, broker: Option<&str>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let bar = ProgressBar::new(args.calls).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} calls  {per_sec}  eta {eta}")
            .context("progress bar template")?,
    );
    let (wall, failed) = if args.local { local(args, &bar)? } else { through_a_worker(args, broker, &bar)? };
    bar.finish_and_clear();
    let latency = Duration::from_millis(args.latency_ms);
    let sequential = latency * u32::try_from(args.calls).unwrap_or(u32::MAX);
    let rows = vec![
        vec!["wall time".to_owned(), format!("{:.3} s", wall.as_secs_f64())],
        vec!["throughput".to_owned(), format!("{:.0} calls/s", args.calls as f64 / wall.as_secs_f64())],
        vec!["one at a time".to_owned(), format!("{:.0} s", sequential.as_secs_f64())],
        vec!["speed-up".to_owned(), format!("{:.0}x", sequential.as_secs_f64() / wall.as_secs_f64())],
        vec!["failed".to_owned(), failed.to_string()],
    ];
    println!("{}", render(&["measure", "value"], &rows));
    println!(
        "\nThe built-in `exec` (run a program) and `http` (send a request) tasks are off by default, since they act \
         for whoever can publish to the queue: start a worker with `artel worker --enable exec,http` to run them."
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn local(args: &DemoArgs, bar: &ProgressBar) -> anyhow::Result<(Duration, u64)> {
    let latency = Duration::from_millis(args.latency_ms);
    let pool = Pool::builder().concurrency(args.concurrency).build().context("starting the local pool")?;
    println!(
        "artel demo: {} calls of {} ms simulated I/O, {} at a time, on the local async pool",
        args.calls, args.latency_ms, args.concurrency
    );
    let started = Instant::now();
    let mut failed = 0u64;
    for result in pool.map(0..args.calls, args.concurrency, move |_| tokio::time::sleep(latency)).blocking() {
        failed += u64::from(result.is_err());
        bar.inc(1);
    }
    Ok((started.elapsed(), failed))
}

fn through_a_worker(args: &DemoArgs, broker: Option<&str>, bar: &ProgressBar) -> anyhow::Result<(Duration, u64)> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let mut space = Namespace::new("demo", broker)?;
        let outcome = async {
            let url = space.url("poll_ms=10");
            let connection = space.open().await?;
            let inspect = connection
                .backend
                .inspect()
                .cloned()
                .context("the demo needs a broker that counts unfinished messages")?;
            println!(
                "artel demo: {} calls of {} ms simulated I/O through a worker process (concurrency {}) on {}",
                args.calls,
                args.latency_ms,
                args.concurrency,
                space.describe()
            );
            let seconds = args.latency_ms as f64 / 1000.0;
            let started = Instant::now();
            let clock = SystemClock;
            let mut ids = Vec::with_capacity(args.calls as usize);
            let mut sent = 0;
            let mut worker = None;
            while sent < args.calls {
                let batch: Vec<_> = (sent..args.calls.min(sent + 1_000))
                    .map(|_| {
                        Signature::new("sleep")
                            .with_args(vec![json!(seconds)])
                            .queue(QUEUE)
                            .to_message(clock.now(), "demo")
                    })
                    .collect();
                ids.extend(batch.iter().map(|m| m.headers.id.clone()));
                sent += batch.len() as u64;
                connection.backend.broker().publish(QUEUE, &batch).await?;
                if worker.is_none() {
                    let c = args.concurrency.to_string();
                    worker = Some(Worker::spawn(&url, &["-Q", QUEUE, "-c", &c, "--burst"])?);
                }
            }
            loop {
                let remaining = inspect.unfinished(QUEUE, args.calls).await?;
                bar.set_position(args.calls - remaining);
                if remaining == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let wall = started.elapsed();
            if let Some(worker) = worker {
                worker.finish(Duration::from_secs(10))?;
            }
            let mut failed = 0;
            for id in &ids {
                let ok = connection
                    .backend
                    .results()
                    .get(id)
                    .await?
                    .is_some_and(|r| r.status == artel::core::State::Success);
                failed += u64::from(!ok);
            }
            Ok((wall, failed))
        }
        .await;
        // Whatever happened, the scratch namespace goes.
        space.remove().await;
        outcome
    })
}
