//! `artel bench`: throughput and overhead, measured beside the Python peers in one run.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use artel::pool::{Functions, Pool, ProcessPool};
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
    /// How fast the dashboard's API answers with a million finished tasks in the store.
    Dashboard(crate::bench_dashboard::DashboardArgs),
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
    /// CPU-bound case: each task computes fib(N) recursively.
    #[arg(long, default_value_t = 25)]
    fib: u64,
    /// CPU-bound case: tasks per measurement for artel (Python's process pools, some 40x
    /// slower per call, run a fiftieth of it).
    #[arg(long, default_value_t = 2_000)]
    cpu_tasks: u32,
    /// Exit with status 1 unless batch submit+get is under 2 µs per task and below
    /// ThreadPoolExecutor(2) by at least 20x for async jobs and 7x for threads(2),
    /// processes(2) is at least 8x below ProcessPoolExecutor(2), and CPU-bound work
    /// scales at least 1.8x from one thread or process to two.
    #[arg(long)]
    check: bool,
}

/// The mode of the CPU-bound rows.
const CPU: &str = "CPU-bound (fib)";

fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

/// What the `artel` binary's process-pool children run for `bench pool`.
pub(crate) fn child_functions() -> Functions {
    Functions::new().register("noop", Ok).register("fib", |n: Value| {
        n.as_u64().map(|n| json!(fib(n))).ok_or_else(|| format!("fib needs a number, got {n}"))
    })
}

pub(crate) fn run(command: &BenchCommand, broker: Option<&str>) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Pool(args) => pool(args),
        BenchCommand::Broker(args) => crate::bench_broker::run(args, broker),
        BenchCommand::Dashboard(args) => crate::bench_dashboard::run(args, broker),
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
    cases.extend(process_cases(args)?);
    cases.extend(cpu_cases(args)?);
    Ok(cases)
}

/// No-op calls through `processes(2)`: the submit+get overhead of a process pool.
fn process_cases(args: &PoolArgs) -> anyhow::Result<Vec<Case>> {
    let pool = ProcessPool::builder().processes(2).build().context("starting the process pool")?;
    let n = (args.tasks / 40).max(1);
    let case = |mode, ns_per_task| Case { executor: "artel processes(2)".into(), mode, ns_per_task };
    let batch = measure(args.repeat, n, || {
        let handles = (0..n).map(|i| pool.submit("noop", json!(i))).collect::<Result<Vec<_>, _>>()?;
        handles.into_iter().try_for_each(|h| h.wait().map(drop))?;
        Ok(())
    })?;
    let one = measure(args.repeat, n / 4, || {
        for i in 0..n / 4 {
            pool.submit("noop", json!(i))?.wait()?;
        }
        Ok(())
    })?;
    Ok(vec![case("batch", batch), case("one at a time", one)])
}

/// fib(N) over one and two threads, and one and two processes.
fn cpu_cases(args: &PoolArgs) -> anyhow::Result<Vec<Case>> {
    let (n, fib_n) = (args.cpu_tasks.max(1), args.fib);
    let mut cases = Vec::new();
    for workers in [1, 2] {
        let pool = Pool::builder().worker_threads(1).threads(workers).build().context("starting the pool")?;
        let ns = measure(args.repeat, n, || {
            let handles = (0..n).map(|_| pool.submit_blocking(move || fib(fib_n))).collect::<Result<Vec<_>, _>>()?;
            handles.into_iter().try_for_each(|h| h.wait().map(drop))?;
            Ok(())
        })?;
        cases.push(Case { executor: format!("artel threads({workers})"), mode: CPU, ns_per_task: ns });
        let pool = ProcessPool::builder().processes(workers).build().context("starting the process pool")?;
        let ns = measure(args.repeat, n, || {
            let handles = (0..n).map(|_| pool.submit("fib", json!(fib_n))).collect::<Result<Vec<_>, _>>()?;
            handles.into_iter().try_for_each(|h| h.wait().map(drop))?;
            Ok(())
        })?;
        cases.push(Case { executor: format!("artel processes({workers})"), mode: CPU, ns_per_task: ns });
    }
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
        .arg("--fib")
        .arg(args.fib.to_string())
        .arg("--cpu-tasks")
        .arg((args.cpu_tasks / 50).max(2).to_string())
        .output()
        .with_context(|| format!("running {} (is Python installed? pass --python or --no-peers)", args.python))?;
    if !output.status.success() {
        bail!("{} failed: {}", args.peers_script.display(), String::from_utf8_lossy(&output.stderr));
    }
    let report: Value = serde_json::from_slice(&output.stdout).context("reading the peer script's JSON")?;
    let mut cases = Vec::new();
    for (executor, modes) in report.as_object().into_iter().flatten() {
        for (mode, key) in [("batch", "batch_ns"), ("one at a time", "one_at_a_time_ns"), (CPU, "cpu_ns")] {
            if let Some(ns) = modes.get(key).and_then(Value::as_f64) {
                cases.push(Case { executor: executor.clone(), mode, ns_per_task: ns });
            }
        }
    }
    Ok(cases)
}

fn pool(args: &PoolArgs) -> anyhow::Result<ExitCode> {
    eprintln!(
        "measuring artel pools ({} async jobs per run, median of {}; CPU-bound: fib({}))...",
        args.tasks, args.repeat, args.fib
    );
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
    let ns = |executor: &str, mode: &str| {
        cases
            .iter()
            .find(|c| c.executor == executor && c.mode == mode)
            .map(|c| c.ns_per_task)
            .with_context(|| format!("{executor} {mode} case missing"))
    };
    let mut ok = true;
    let mut verdict = |what: String, pass: bool| {
        ok &= pass;
        eprintln!("check: {what}: {}", if pass { "pass" } else { "FAIL" });
    };
    // (executor, most ns per task, least times below ThreadPoolExecutor(2))
    for (executor, most_ns, least_ratio) in [("artel async pool", 2_000.0, 20.0), ("artel threads(2)", 2_000.0, 7.0)] {
        let ours = ns(executor, "batch")?;
        let ratio = theirs / ours;
        verdict(
            format!(
                "{executor} batch submit+get {ours:.0} ns (target < {most_ns:.0}), {ratio:.1}x lower than ThreadPoolExecutor(2) (target >= {least_ratio}x)"
            ),
            ours < most_ns && ratio >= least_ratio,
        );
    }
    let ratio = ns("ProcessPoolExecutor(2)", "batch")? / ns("artel processes(2)", "batch")?;
    verdict(
        format!("artel processes(2) batch {ratio:.1}x lower than ProcessPoolExecutor(2) (target >= 8x)"),
        ratio >= 8.0,
    );
    for kind in ["threads", "processes"] {
        let scaling = ns(&format!("artel {kind}(1)"), CPU)? / ns(&format!("artel {kind}(2)"), CPU)?;
        verdict(format!("CPU-bound work scales {scaling:.2}x from 1 to 2 {kind} (target >= 1.8x)"), scaling >= 1.8);
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
