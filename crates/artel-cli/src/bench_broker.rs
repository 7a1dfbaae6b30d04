//! `artel bench broker`: a broker's throughput and latency, with producer and worker in
//! separate processes (a scratch SQLite file by default, or the `--broker` given).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use artel::core::Inspect;
use artel::core::{Clock, Signature, SystemClock};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::child::{Namespace, Worker};
use artel::cli::table::render;
use artel::{Connection, connect};

/// Options of `artel bench broker`.
#[derive(Debug, Args)]
pub(crate) struct BrokerArgs {
    /// No-op tasks per throughput phase.
    #[arg(long, default_value_t = 50_000)]
    tasks: u64,
    /// Worker concurrency.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Round trips (call, then wait for the result) for the latency phase.
    #[arg(long, default_value_t = 200)]
    round_trips: usize,
    /// Callers publishing one task per call at once, for the "enqueue, one per call"
    /// phase (as web handlers or `artel map` do); 0 skips it.
    #[arg(long, default_value_t = 100)]
    senders: usize,
    /// Exit with status 1 unless enqueue+drain reaches this many tasks/s.
    #[arg(long)]
    check: Option<f64>,
    /// Run `sleep` tasks of this many milliseconds instead of no-ops.
    #[arg(long)]
    sleep_ms: Option<u64>,
    /// Also drain with the worker changed so, alternating plain and changed (twice each),
    /// to show what a feature costs.
    #[arg(long, value_enum)]
    compare: Option<Variant>,
}

/// A change to the draining worker that `--compare` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Variant {
    /// Serving Prometheus metrics (`--metrics 127.0.0.1:0`).
    Metrics,
    /// Keeping no task history (`--no-history`).
    NoHistory,
}

impl Variant {
    fn worker_args(self) -> &'static [&'static str] {
        match self {
            Variant::Metrics => &["--metrics", "127.0.0.1:0"],
            Variant::NoHistory => &["--no-history"],
        }
    }

    fn phase(self) -> &'static str {
        match self {
            Variant::Metrics => "drain, metrics on",
            Variant::NoHistory => "drain, no history",
        }
    }
}

const QUEUE: &str = "bench";
const BATCH: u64 = 1_000;

/// Measures `broker` (`--broker`: sqlite:// or redis://, under a unique key prefix on
/// Redis), or a scratch SQLite file when none was named.
pub(crate) fn run(args: &BrokerArgs, broker: Option<&str>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.concurrency > 0 && args.tasks > 0, "--tasks and --concurrency must be at least 1");
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(bench(args, broker))
}

struct Phase {
    name: &'static str,
    tasks: u64,
    took: Duration,
    note: String,
}

async fn bench(args: &BrokerArgs, broker: Option<&str>) -> anyhow::Result<ExitCode> {
    let c = args.concurrency.to_string();
    let worker_args = ["-Q", QUEUE, "-c", c.as_str(), "--burst"];
    let mut phases = Vec::new();

    // 1 and 2: fill the queue, then drain it with a worker process (with --compare,
    // alternately plain and changed).
    let rounds = match args.compare {
        Some(variant) => vec![None, Some(variant), None, Some(variant)],
        None => vec![None],
    };
    for variant in rounds {
        let (enqueue, drain) = fill_and_drain(broker, &worker_args, args.tasks, variant).await?;
        if phases.is_empty() {
            phases.push(enqueue);
        }
        phases.push(drain);
    }

    if args.senders > 0 {
        phases.insert(1, one_per_call(broker, args.tasks, args.senders).await?);
    }

    // 3 and 4, in one scratch namespace removed whatever happens.
    let mut space = Namespace::new("bench", broker)?;
    let measured = together_and_one_by_one(&mut space, args, &worker_args, &c).await;
    space.remove().await;
    let (together, end_to_end, mut samples) = measured?;
    phases.push(together);
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
        "round trip (publish, run, store, read): p50 {:.2} ms, p99 {:.2} ms over {} calls",
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

/// Phases 3 and 4 in `space`: enqueue and drain at once, then round trips one at a time.
async fn together_and_one_by_one(
    space: &mut Namespace,
    args: &BrokerArgs,
    worker_args: &[&str],
    c: &str,
) -> anyhow::Result<(Phase, Duration, Vec<Duration>)> {
    // 3: producer and worker at the same time.
    let url = space.url("");
    let connection = space.open().await?;
    let inspect = connection.backend.inspect().cloned().context("this broker cannot count unfinished messages")?;
    eprintln!("enqueue + drain at once...");
    let started = Instant::now();
    enqueue(&connection, BATCH.min(args.tasks), args.sleep_ms).await?;
    let worker = Worker::spawn(&url, worker_args)?;
    enqueue(&connection, args.tasks - BATCH.min(args.tasks), args.sleep_ms).await?;
    let memory = drain(inspect.as_ref(), args.tasks, worker.pid()).await?;
    let end_to_end = started.elapsed();
    let together = Phase {
        name: "enqueue + drain",
        tasks: args.tasks,
        took: end_to_end,
        note: if memory.is_empty() { "worker in another process".into() } else { memory },
    };
    worker.finish(Duration::from_secs(30))?;

    // 4: latency of one call at a time, with the broker's default settings (what a
    // user gets: no shortened polls).
    eprintln!("round trips...");
    let connection = connect(&url).await?;
    let worker = Worker::spawn(&url, &["-Q", QUEUE, "-c", c])?;
    let mut samples = Vec::with_capacity(args.round_trips);
    let warmup = 5;
    for i in 0..args.round_trips + warmup {
        let message = Signature::new("noop").queue(QUEUE).to_message(SystemClock.now(), "bench");
        let started = Instant::now();
        connection.backend.broker().publish(QUEUE, std::slice::from_ref(&message)).await?;
        connection.backend.results().wait(&message.headers.id, Duration::from_secs(30)).await?;
        if i >= warmup {
            samples.push(started.elapsed());
        }
    }
    drop(worker);
    Ok((together, end_to_end, samples))
}

/// Fills a fresh namespace with `tasks` no-ops, then drains it with a worker process
/// (changed by `variant`): the enqueue and drain phases.
async fn fill_and_drain(
    broker: Option<&str>,
    worker_args: &[&str],
    tasks: u64,
    variant: Option<Variant>,
) -> anyhow::Result<(Phase, Phase)> {
    let mut space = Namespace::new("bench", broker)?;
    println!("broker: {}", space.describe());
    let measured = async {
        let url = space.url("");
        let connection = space.open().await?;
        let inspect = connection.backend.inspect().cloned().context("this broker cannot count unfinished messages")?;
        eprintln!("enqueueing {tasks} no-op tasks...");
        let started = Instant::now();
        enqueue(&connection, tasks, None).await?;
        let fill = Phase { name: "enqueue", tasks, took: started.elapsed(), note: format!("batches of {BATCH}") };
        let name = variant.map_or("drain", Variant::phase);
        eprintln!("{name} with a worker process...");
        let args: Vec<&str> =
            worker_args.iter().chain(variant.map_or(&[][..], Variant::worker_args)).copied().collect();
        let started = Instant::now();
        let worker = Worker::spawn(&url, &args)?;
        let rss = drain(inspect.as_ref(), tasks, worker.pid()).await?;
        let drained = Phase { name, tasks, took: started.elapsed(), note: rss };
        worker.finish(Duration::from_secs(30))?;
        Ok((fill, drained))
    }
    .await;
    // Whatever happened, the scratch namespace goes.
    space.remove().await;
    measured
}

/// Publishes `tasks` no-ops in a fresh namespace, one per call, from `senders` callers
/// at once: the "enqueue, one per call" phase.
async fn one_per_call(broker: Option<&str>, tasks: u64, senders: usize) -> anyhow::Result<Phase> {
    let mut space = Namespace::new("bench", broker)?;
    let measured = async {
        let connection = space.open().await?;
        eprintln!("enqueueing {tasks} no-op tasks one per call from {senders} callers...");
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..senders {
            let (broker, next) = (connection.backend.broker().clone(), next.clone());
            callers.spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < tasks {
                    let message = Signature::new("noop").queue(QUEUE).to_message(SystemClock.now(), "bench");
                    broker.publish(QUEUE, std::slice::from_ref(&message)).await?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(called) = callers.join_next().await {
            called.context("a publishing caller panicked")??;
        }
        let note = format!("{senders} callers at once");
        Ok(Phase { name: "enqueue, one per call", tasks, took: started.elapsed(), note })
    }
    .await;
    space.remove().await;
    measured
}

/// Publishes `tasks` no-ops (or `sleep` tasks of `sleep_ms`) in batches.
async fn enqueue(connection: &Connection, tasks: u64, sleep_ms: Option<u64>) -> anyhow::Result<()> {
    let task = || match sleep_ms {
        Some(ms) => Signature::new("sleep").with_args(vec![serde_json::json!(ms as f64 / 1000.0)]),
        None => Signature::new("noop"),
    };
    let mut sent = 0;
    while sent < tasks {
        let n = BATCH.min(tasks - sent);
        let batch: Vec<_> = (0..n).map(|_| task().queue(QUEUE).to_message(SystemClock.now(), "bench")).collect();
        connection.backend.broker().publish(QUEUE, &batch).await?;
        sent += n;
    }
    Ok(())
}

/// Waits until the queue is empty, showing progress; returns the worker's memory range:
/// anonymous memory (heap, what a leak or an unbounded buffer would grow) and total RSS
/// (which also counts the database's memory-mapped file pages, bounded by mmap_size).
async fn drain(broker: &dyn Inspect, tasks: u64, pid: u32) -> anyhow::Result<String> {
    let bar = ProgressBar::new(tasks).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tasks  {per_sec}").context("progress bar template")?,
    );
    let (mut anon, mut total) = ((u64::MAX, 0), (u64::MAX, 0));
    let mut last_count = Instant::now();
    let warm = Instant::now() + Duration::from_millis(500);
    // An exact count reads the whole queue (on PostgreSQL, a table larger than its
    // buffers: tens of milliseconds): do it for the progress bar every two seconds, and
    // the O(1) "anything left?" check often, so measuring does not slow down what it
    // measures.
    while broker.unfinished(QUEUE, 1).await? > 0 {
        if last_count.elapsed() >= Duration::from_secs(2) {
            bar.set_position(tasks.saturating_sub(broker.unfinished(QUEUE, tasks).await?));
            last_count = Instant::now();
        }
        // The peak counts from the start (a short drain may end within the warm-up); the
        // low end only once the worker has warmed up.
        if let (Some(a), Some(t)) = (memory_kib(pid, "RssAnon:"), memory_kib(pid, "VmRSS:")) {
            let warmed = Instant::now() > warm;
            anon = (if warmed { anon.0.min(a) } else { anon.0 }, anon.1.max(a));
            total = (if warmed { total.0.min(t) } else { total.0 }, total.1.max(t));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bar.finish_and_clear();
    let mib = |(low, high): (u64, u64)| match low {
        u64::MAX => format!("{:.1}", high as f64 / 1024.0),
        low => format!("{:.1}-{:.1}", low as f64 / 1024.0, high as f64 / 1024.0),
    };
    Ok(if total.1 == 0 { String::new() } else { format!("worker heap {} MiB, RSS {} MiB", mib(anon), mib(total)) })
}

/// A memory figure of a process from /proc (Linux), in KiB.
fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
