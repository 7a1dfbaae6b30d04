//! `artel demo`: many simulated I/O calls through the local async pool.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use artel::pool::Pool;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

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
}

pub(crate) fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let latency = Duration::from_millis(args.latency_ms);
    let pool = Pool::builder().concurrency(args.concurrency).build().context("starting the local pool")?;
    println!(
        "artel demo: {} calls of {} ms simulated I/O, {} at a time, on the local async pool",
        args.calls, args.latency_ms, args.concurrency
    );
    let bar = ProgressBar::new(args.calls).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} calls  {per_sec}  eta {eta}")
            .context("progress bar template")?,
    );
    let started = Instant::now();
    let mut failed = 0u64;
    for result in pool.map(0..args.calls, args.concurrency, move |_| tokio::time::sleep(latency)).blocking() {
        failed += u64::from(result.is_err());
        bar.inc(1);
    }
    bar.finish_and_clear();
    let wall = started.elapsed();
    let sequential = latency * u32::try_from(args.calls).unwrap_or(u32::MAX);
    let rows = vec![
        vec!["wall time".to_owned(), format!("{:.3} s", wall.as_secs_f64())],
        vec!["throughput".to_owned(), format!("{:.0} calls/s", args.calls as f64 / wall.as_secs_f64())],
        vec!["one at a time".to_owned(), format!("{:.0} s", sequential.as_secs_f64())],
        vec!["speed-up".to_owned(), format!("{:.0}x", sequential.as_secs_f64() / wall.as_secs_f64())],
        vec!["failed".to_owned(), failed.to_string()],
    ];
    println!("{}", crate::table::render(&["measure", "value"], &rows));
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
