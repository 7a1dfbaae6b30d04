//! `artel bench sqlite`: the embedded broker with producer and worker in separate processes.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use artel_core::{Clock, Signature, SystemClock};
use artel_sqlite::SqliteBroker;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::child::{TempDb, Worker};
use super::table::render;
use crate::connect::{Connection, connect};

/// Options of `artel bench sqlite`.
#[derive(Debug, Args)]
pub(crate) struct SqliteArgs {
    /// No-op tasks per throughput phase.
    #[arg(long, default_value_t = 50_000)]
    tasks: u64,
    /// Worker concurrency.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Round trips (call, then wait for the result) for the latency phase.
    #[arg(long, default_value_t = 200)]
    round_trips: usize,
    /// Exit with status 1 unless enqueue+drain reaches this many tasks/s.
    #[arg(long)]
    check: Option<f64>,
}

const QUEUE: &str = "bench";
const BATCH: u64 = 1_000;

pub(crate) fn run(args: &SqliteArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.concurrency > 0 && args.tasks > 0, "--tasks and --concurrency must be at least 1");
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(bench(args))
}

struct Phase {
    name: &'static str,
    tasks: u64,
    took: Duration,
    note: String,
}

async fn bench(args: &SqliteArgs) -> anyhow::Result<ExitCode> {
    let c = args.concurrency.to_string();
    let worker_args = ["-Q", QUEUE, "-c", c.as_str(), "--burst"];
    let mut phases = Vec::new();

    // 1 and 2: fill the queue, then drain it with a worker process.
    let db = TempDb::new("bench");
    let url = format!("sqlite://{}", db.path().display());
    let connection = connect(&url)?;
    let sqlite = connection.sqlite.clone().context("sqlite broker")?;
    eprintln!("enqueueing {} no-op tasks...", args.tasks);
    let started = Instant::now();
    enqueue(&connection, args.tasks, None).await?;
    phases.push(Phase {
        name: "enqueue",
        tasks: args.tasks,
        took: started.elapsed(),
        note: format!("batches of {BATCH}"),
    });
    eprintln!("draining with a worker process...");
    let started = Instant::now();
    let worker = Worker::spawn(&url, &worker_args)?;
    let rss = drain(&sqlite, args.tasks, worker.pid()).await?;
    phases.push(Phase { name: "drain", tasks: args.tasks, took: started.elapsed(), note: rss });
    worker.finish(Duration::from_secs(30))?;
    drop(connection);
    drop(db);

    // 3: producer and worker at the same time.
    let db = TempDb::new("bench");
    let url = format!("sqlite://{}", db.path().display());
    let connection = connect(&url)?;
    let sqlite = connection.sqlite.clone().context("sqlite broker")?;
    eprintln!("enqueue + drain at once...");
    let started = Instant::now();
    enqueue(&connection, BATCH, None).await?;
    let worker = Worker::spawn(&url, &worker_args)?;
    enqueue(&connection, args.tasks - BATCH.min(args.tasks), None).await?;
    drain(&sqlite, args.tasks, worker.pid()).await?;
    let end_to_end = started.elapsed();
    phases.push(Phase {
        name: "enqueue + drain",
        tasks: args.tasks,
        took: end_to_end,
        note: "worker in another process".into(),
    });
    worker.finish(Duration::from_secs(30))?;

    // 4: latency of one call at a time.
    eprintln!("round trips...");
    let latency_url = format!("{url}?poll_ms=1");
    let connection = connect(&latency_url)?;
    let worker = Worker::spawn(&latency_url, &["-Q", QUEUE, "-c", c.as_str()])?;
    let mut samples = Vec::with_capacity(args.round_trips);
    let warmup = 5;
    for i in 0..args.round_trips + warmup {
        let message = Signature::new("noop").queue(QUEUE).to_message(SystemClock.now(), "bench");
        let started = Instant::now();
        connection.broker.publish(QUEUE, std::slice::from_ref(&message)).await?;
        connection.backend.wait(&message.headers.id, Duration::from_secs(30)).await?;
        if i >= warmup {
            samples.push(started.elapsed());
        }
    }
    drop(worker);
    samples.sort_unstable();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];

    let rows: Vec<Vec<String>> = phases
        .iter()
        .map(|p| {
            let rate = p.tasks as f64 / p.took.as_secs_f64();
            vec![
                p.name.to_owned(),
                p.tasks.to_string(),
                format!("{:.3} s", p.took.as_secs_f64()),
                format!("{rate:.0}"),
                p.note.clone(),
            ]
        })
        .collect();
    println!("{}", render(&["phase", "tasks", "time", "tasks/s", "notes"], &rows));
    println!(
        "round trip (publish, run, store, read; poll 1 ms): p50 {:.2} ms, p99 {:.2} ms over {} calls",
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3,
        samples.len()
    );
    let rate = args.tasks as f64 / end_to_end.as_secs_f64();
    Ok(match args.check {
        Some(target) if rate < target => {
            eprintln!("check: enqueue+drain {rate:.0} tasks/s is below {target:.0}: FAIL");
            ExitCode::FAILURE
        }
        Some(target) => {
            eprintln!("check: enqueue+drain {rate:.0} tasks/s (target {target:.0}): pass");
            ExitCode::SUCCESS
        }
        None => ExitCode::SUCCESS,
    })
}

async fn enqueue(connection: &Connection, tasks: u64, bar: Option<&ProgressBar>) -> anyhow::Result<()> {
    let mut sent = 0;
    while sent < tasks {
        let n = BATCH.min(tasks - sent);
        let batch: Vec<_> =
            (0..n).map(|_| Signature::new("noop").queue(QUEUE).to_message(SystemClock.now(), "bench")).collect();
        connection.broker.publish(QUEUE, &batch).await?;
        sent += n;
        if let Some(bar) = bar {
            bar.set_position(sent);
        }
    }
    Ok(())
}

/// Waits until the queue is empty, showing progress; returns the worker's RSS range.
async fn drain(broker: &SqliteBroker, tasks: u64, pid: u32) -> anyhow::Result<String> {
    let bar = ProgressBar::new(tasks).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tasks  {per_sec}").context("progress bar template")?,
    );
    let (mut low, mut high) = (u64::MAX, 0);
    loop {
        let left: u64 = broker
            .queue_counts()
            .await?
            .iter()
            .filter(|c| c.queue == QUEUE)
            .map(|c| c.ready + c.delayed + c.leased)
            .sum();
        bar.set_position(tasks.saturating_sub(left));
        if let Some(kib) = rss_kib(pid) {
            (low, high) = (low.min(kib), high.max(kib));
        }
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bar.finish_and_clear();
    Ok(if high == 0 {
        String::new()
    } else {
        format!("worker RSS {:.1}-{:.1} MiB", low as f64 / 1024.0, high as f64 / 1024.0)
    })
}

/// Resident set size of a process, from /proc (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
