//! `artel bench`: throughput and overhead, measured beside the Python peers in one run.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use artel::pool::Pool;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// What to benchmark.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Submit+get overhead of the local pools vs Python's concurrent.futures executors.
    Pool(PoolArgs),
    /// Throughput and latency of a broker (SQLite by default, or --url redis://...),
    /// producer and worker in separate processes.
    Broker(crate::bench_broker::BrokerArgs),
}

/// Options of `artel bench pool`.
#[derive(Debug, Args)]
pub(crate) struct PoolArgs {
    /// Jobs per measurement for async jobs (thread jobs use a fifth of it).
    #[arg(long, default_value_t = 200_000)]
    tasks: u32,
    /// Measurements per case; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Python interpreter for the peer measurements.
    #[arg(long, default_value = "python3")]
    python: String,
    /// The peer benchmark script.
    #[arg(long, default_value = "bench/pool_peers.py")]
    peers_script: PathBuf,
    /// Skip the Python peers.
    #[arg(long)]
    no_peers: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Exit with status 1 unless batch submit+get is under 2 µs per task and below
    /// ThreadPoolExecutor(2) by at least 20x for async jobs and 7x for threads(2).
    #[arg(long)]
    check: bool,
}

pub(crate) fn run(command: &BenchCommand, broker: Option<&str>) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Pool(args) => pool(args),
        BenchCommand::Broker(args) => crate::bench_broker::run(args, broker),
    }
}

/// One measured case: who, how, and nanoseconds per submit+get.
struct Case {
    executor: String,
    mode: &'static str,
    ns_per_task: f64,
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn measure(repeat: usize, tasks: u32, mut once: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    once()?; // warm-up
    let mut samples = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        once()?;
        samples.push(started.elapsed().as_nanos() as f64 / f64::from(tasks));
    }
    Ok(median(samples))
}

/// Runs `job` as a task on the pool's runtime, as async code using the pool does.
fn in_task<F>(pool: &Pool, job: F) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    pool.runtime().block_on(pool.runtime().spawn(job))?
}

async fn batch(pool: Arc<Pool>, n: u32) -> anyhow::Result<()> {
    let handles = (0..n).map(|i| pool.submit(async move { i })).collect::<Result<Vec<_>, _>>()?;
    for h in handles {
        h.await?;
    }
    Ok(())
}

async fn one_at_a_time(pool: Arc<Pool>, n: u32) -> anyhow::Result<()> {
    for i in 0..n {
        pool.submit(async move { i })?.await?;
    }
    Ok(())
}

fn rust_cases(args: &PoolArgs) -> anyhow::Result<Vec<Case>> {
    let pool = Arc::new(Pool::builder().worker_threads(2).threads(2).build().context("starting the pool")?);
    let n = args.tasks;
    let thread_n = (n / 5).max(1);
    let async_case = |mode, ns_per_task| Case { executor: "artel async pool".into(), mode, ns_per_task };
    let thread_case = |mode, ns_per_task| Case { executor: "artel threads(2)".into(), mode, ns_per_task };
    let mut cases = Vec::new();
    let ns = measure(args.repeat, n, || in_task(&pool, batch(pool.clone(), n)))?;
    cases.push(async_case("batch", ns));
    let ns = measure(args.repeat, n, || in_task(&pool, one_at_a_time(pool.clone(), n)))?;
    cases.push(async_case("one at a time", ns));
    let ns = measure(args.repeat, n, || pool.runtime().block_on(batch(pool.clone(), n)))?;
    cases.push(async_case("batch, from sync code", ns));
    let ns = measure(args.repeat, thread_n, || {
        let handles = (0..thread_n).map(|i| pool.submit_blocking(move || i)).collect::<Result<Vec<_>, _>>()?;
        handles.into_iter().try_for_each(|h| h.wait().map(drop))?;
        Ok(())
    })?;
    cases.push(thread_case("batch", ns));
    let ns = measure(args.repeat, thread_n, || {
        for i in 0..thread_n {
            pool.submit_blocking(move || i)?.wait()?;
        }
        Ok(())
    })?;
    cases.push(thread_case("one at a time", ns));
    Ok(cases)
}

fn python_cases(args: &PoolArgs) -> anyhow::Result<Vec<Case>> {
    if !args.peers_script.exists() {
        bail!(
            "peer script {} not found: run from the repository root, pass --peers-script, or --no-peers",
            args.peers_script.display()
        );
    }
    let output = Command::new(&args.python)
        .arg(&args.peers_script)
        .arg("--repeat")
        .arg(args.repeat.to_string())
        .output()
        .with_context(|| format!("running {} (is Python installed? pass --python or --no-peers)", args.python))?;
    if !output.status.success() {
        bail!("{} failed: {}", args.peers_script.display(), String::from_utf8_lossy(&output.stderr));
    }
    let report: Value = serde_json::from_slice(&output.stdout).context("reading the peer script's JSON")?;
    let mut cases = Vec::new();
    for (executor, modes) in report.as_object().into_iter().flatten() {
        for (mode, key) in [("batch", "batch_ns"), ("one at a time", "one_at_a_time_ns")] {
            if let Some(ns) = modes.get(key).and_then(Value::as_f64) {
                cases.push(Case { executor: executor.clone(), mode, ns_per_task: ns });
            }
        }
    }
    Ok(cases)
}

fn pool(args: &PoolArgs) -> anyhow::Result<ExitCode> {
    eprintln!("measuring artel pools ({} async jobs per run, median of {})...", args.tasks, args.repeat);
    let mut cases = rust_cases(args)?;
    if !args.no_peers {
        eprintln!("measuring Python concurrent.futures peers...");
        cases.extend(python_cases(args)?);
    }
    let reference = |mode: &str| {
        let mode = mode.split(',').next().unwrap_or(mode);
        cases.iter().find(|c| c.executor == "ThreadPoolExecutor(2)" && c.mode == mode).map(|c| c.ns_per_task)
    };
    if args.json {
        let rows: Vec<Value> = cases
            .iter()
            .map(|c| json!({"executor": c.executor, "mode": c.mode, "ns_per_task": c.ns_per_task}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let rows: Vec<Vec<String>> = cases
            .iter()
            .map(|c| {
                let vs = reference(c.mode).map_or("-".to_owned(), |r| format!("{:.1}x", r / c.ns_per_task));
                vec![
                    c.executor.clone(),
                    c.mode.to_owned(),
                    format!("{:.0}", c.ns_per_task),
                    format!("{:.0}", 1e9 / c.ns_per_task),
                    vs,
                ]
            })
            .collect();
        let header = ["executor", "submit+get", "ns/task", "tasks/s", "vs ThreadPoolExecutor(2)"];
        println!("{}", artel::cli::table::render(&header, &rows));
    }
    if !args.check {
        return Ok(ExitCode::SUCCESS);
    }
    let Some(theirs) = reference("batch") else { bail!("--check needs the Python peers (drop --no-peers)") };
    let batch_of = |executor: &str| cases.iter().find(|c| c.executor == executor && c.mode == "batch");
    // (executor, most ns per task, least times below ThreadPoolExecutor(2))
    let targets = [("artel async pool", 2_000.0, 20.0), ("artel threads(2)", 2_000.0, 7.0)];
    let mut ok = true;
    for (executor, most_ns, least_ratio) in targets {
        let ours = batch_of(executor).with_context(|| format!("{executor} batch case missing"))?.ns_per_task;
        let ratio = theirs / ours;
        let pass = ours < most_ns && ratio >= least_ratio;
        ok &= pass;
        eprintln!(
            "check: {executor} batch submit+get {ours:.0} ns (target < {most_ns:.0}), {ratio:.1}x lower than ThreadPoolExecutor(2) (target >= {least_ratio}x): {}",
            if pass { "pass" } else { "FAIL" }
        );
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
