//! `artel map`: calls a task once per item of a file, `--concurrency` at a time, with an
//! optional shared rate, retries with backoff and jitter, a per-call timeout, and one
//! JSON line per item written as calls finish (or in input order). The calls run in this
//! process, or with `--broker` on any number of workers (`--concurrency` messages in
//! flight, results collected on one watch). Memory stays flat in the input's size: items
//! are read as calls free up, at most `--concurrency` calls and one output batch are
//! held. `--resume` after a crash or Ctrl-C skips the items whose lines are already in
//! the output.

mod call;
mod input;
mod output;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use artel_core::Backoff;
use clap::Args;
use futures_util::{Stream, StreamExt, stream};
use governor::RateLimiter;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{App, Registry, ResultHub};
use call::{Plan, Remote, RetryOn, Runner};
use input::{Format, Template};
use output::{Outcome, Sink};

/// Options of `artel map`.
#[derive(Debug, Args)]
pub(crate) struct MapArgs {
    /// The task called for each item (`echo`, `sleep`, `http`, `exec`, or one of yours).
    #[arg(long)]
    task: String,
    /// The items: a file, or - for standard input. Lines are strings; with --format jsonl
    /// each line is a JSON value (numbers stay numbers).
    #[arg(long, default_value = "-")]
    input: String,
    /// Where results go, one JSON line per item: a file, or - for standard output.
    #[arg(long, default_value = "-")]
    output: String,
    /// How the input is written; by default from its name (.jsonl/.ndjson, .csv, else
    /// one item per line).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Positional arguments as a JSON template naming parts of the item: `'["{url}"]'`
    /// (a field), `'["{0}"]'` (an element), `'["{}"]'` (the item). By default the item
    /// is the one argument.
    #[arg(long)]
    args: Option<String>,
    /// Keyword arguments as a JSON template, e.g. `'{"url": "{0}", "timeout": 5}'`.
    #[arg(long)]
    kwargs: Option<String>,
    /// Calls running at once.
    #[arg(long, short = 'c', default_value_t = 100)]
    concurrency: usize,
    /// At most this many calls started, shared by all: `500/s`, `30/m`, `1000/h`.
    #[arg(long)]
    rate: Option<String>,
    /// Retries of a failed or timed-out call (not of one whose arguments are wrong), with
    /// exponential backoff and full jitter.
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// Which failures --retries retries.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "error,timeout,lost")]
    retry_on: Vec<RetryOn>,
    /// The first retry's longest wait, in seconds; it doubles with each retry, up to 60 s.
    #[arg(long, default_value_t = 0.5)]
    backoff: f64,
    /// Seconds a call may take; then it counts as failed (and is retried). On workers it is
    /// the task's hard time limit (time in the queue does not count).
    #[arg(long)]
    timeout: Option<f64>,
    /// Write results in input order (holding at most --concurrency of them), not as they finish.
    #[arg(long)]
    ordered: bool,
    /// Also write the failed items' lines here.
    #[arg(long)]
    failures: Option<PathBuf>,
    /// Skip the items whose lines are already in --output (after a crash or Ctrl-C) and
    /// append the rest: each item ends up there once. With --broker, results that workers
    /// stored for the interrupted run are reused rather than called again.
    #[arg(long)]
    resume: bool,
    /// Keep the finished item indexes here (one bit each) rather than reading them back
    /// from --output: for --resume when the output goes to standard output or elsewhere.
    #[arg(long)]
    journal: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Guarded built-in tasks to allow here (`exec`, `http`), as for `artel worker
    /// --enable`; with --broker the workers decide.
    #[arg(long, value_delimiter = ',')]
    enable: Vec<String>,
}

pub(crate) fn run(args: MapArgs, mut tasks: Registry, broker: Option<&str>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.backoff >= 0.0 && args.backoff.is_finite(), "--backoff must be 0 or more seconds");
    anyhow::ensure!(
        broker.is_none() || args.enable.is_empty(),
        "--enable allows guarded tasks in this process; with --broker the workers run the calls: \
         start them with `artel worker --enable {}`",
        args.enable.join(",")
    );
    let local = match broker {
        Some(url) => Err(url),
        None => {
            for name in &args.enable {
                crate::builtins::enable(&mut tasks, name).map_err(anyhow::Error::msg)?;
            }
            Ok(tasks.get(&args.task).cloned().ok_or_else(|| {
                anyhow::anyhow!(
                    "no task {:?} here: this binary runs {} (see `artel tasks`), or send the calls to workers with --broker",
                    args.task,
                    tasks.names().join(", ")
                )
            })?)
        }
    };
    let timeout = match args.timeout {
        Some(seconds) if seconds > 0.0 && seconds.is_finite() => Some(Duration::from_secs_f64(seconds)),
        Some(_) => anyhow::bail!("--timeout must be more than 0 seconds"),
        None => None,
    };
    let rate = match &args.rate {
        Some(text) => {
            let quota = artel_runtime::parse_rate(text).map_err(|e| anyhow::anyhow!("--rate: {e}"))?;
            // No burst: calls start evenly spaced from the first.
            Some(RateLimiter::direct(quota.allow_burst(NonZeroU32::MIN)))
        }
        None => None,
    };
    let template = |text: &Option<String>, flag| text.as_deref().map(|t| Template::parse(t, flag)).transpose();
    let (args_template, kwargs_template) = (
        template(&args.args, "--args").map_err(anyhow::Error::msg)?,
        template(&args.kwargs, "--kwargs").map_err(anyhow::Error::msg)?,
    );
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async {
        let runner = match local {
            Ok(handler) => Runner::Local(handler),
            Err(url) => remote(url, &args).await?,
        };
        let plan = Plan {
            runner,
            task: args.task.clone(),
            args: args_template,
            kwargs: kwargs_template,
            rate,
            retries: args.retries,
            retry_on: args.retry_on.clone(),
            backoff: Backoff {
                multiplier: Duration::from_secs_f64(args.backoff),
                max: Duration::from_secs(60),
                ..Backoff::default()
            },
            timeout,
        };
        map(&args, &plan).await
    })
}

/// Workers through `url`. The run's id is kept next to the journal (the output unless
/// --journal says otherwise): read back when resuming, so the interrupted run's results
/// are found, and new otherwise.
async fn remote(url: &str, args: &MapArgs) -> anyhow::Result<Runner> {
    let app = App::connect(url).await?;
    let hub = ResultHub::start(app.backend()).await.context("cannot watch results")?;
    let journal = args.journal.as_ref().map(|path| path.display().to_string());
    let saved = journal.or_else(|| (args.output != "-").then(|| args.output.clone()));
    let saved = saved.map(|path| PathBuf::from(format!("{path}.run-id")));
    let previous = match (&saved, args.resume) {
        (Some(path), true) => {
            std::fs::read_to_string(path).ok().map(|id| id.trim().to_owned()).filter(|id| !id.is_empty())
        }
        _ => None,
    };
    let reuse = previous.is_some();
    let run = previous.unwrap_or_else(|| format!("map-{}", uuid::Uuid::new_v4().simple()));
    if let Some(path) = saved {
        std::fs::write(&path, &run).with_context(|| format!("cannot write the run id to {}", path.display()))?;
    }
    Ok(Runner::Remote(Box::new(Remote { app, hub, run, reuse })))
}

async fn map(args: &MapArgs, plan: &Plan) -> anyhow::Result<ExitCode> {
    let format = args.format.unwrap_or_else(|| Format::of_path(&args.input));
    let (reader, total): (Box<dyn BufRead + Send>, Option<u64>) = if args.input == "-" {
        (Box::new(BufReader::new(std::io::stdin())), None)
    } else {
        let path = Path::new(&args.input);
        let file = File::open(path).with_context(|| format!("cannot read the input {}", path.display()))?;
        (Box::new(BufReader::with_capacity(1 << 16, file)), count_items(path, format).ok())
    };
    let (done, journal) = match (&args.journal, args.resume, args.output.as_str()) {
        (Some(path), resume, _) => {
            let (journal, done) = output::Journal::open(path, resume)
                .with_context(|| format!("cannot open the journal {}", path.display()))?;
            (done, Some(journal))
        }
        (None, false, _) => (output::Done::default(), None),
        (None, true, "-") => {
            anyhow::bail!("--resume reads what the output already holds: give --output FILE, or keep a --journal FILE")
        }
        (None, true, path) => {
            (output::done_in(Path::new(path)).with_context(|| format!("cannot read the output {path}"))?, None)
        }
    };
    let out: Box<dyn Write + Send> = match args.output.as_str() {
        "-" => Box::new(std::io::stdout()),
        path => {
            let mut options = OpenOptions::new();
            options.create(true);
            if args.resume {
                options.append(true)
            } else {
                options.write(true).truncate(true)
            };
            Box::new(options.open(path).with_context(|| format!("cannot write the output {path}"))?)
        }
    };
    let failures = match &args.failures {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(args.resume)
                .write(true)
                .truncate(!args.resume)
                .open(path)
                .with_context(|| format!("cannot write the failures {}", path.display()))?,
        ),
        None => None,
    };
    let mut sink = Sink::new(out, failures, journal);
    let skipped = done.len();
    let items = input::items(reader, format)
        .zip(0u64..)
        .filter(move |(_, index)| !done.contains(*index))
        .map(|(item, index)| (index, item));
    let calls = stream::iter(items).map(|(index, item)| plan.call(index, item));
    let mut outcomes: std::pin::Pin<Box<dyn Stream<Item = Outcome> + Send + '_>> = if args.ordered {
        Box::pin(calls.buffered(args.concurrency))
    } else {
        Box::pin(calls.buffer_unordered(args.concurrency))
    };
    let bar = progress(args.quiet, total.map(|t| t.saturating_sub(skipped)));
    let (mut failed, mut retried) = (0u64, 0u64);
    while let Some(outcome) = outcomes.next().await {
        failed += u64::from(outcome.result.is_err());
        retried += u64::from(outcome.attempts.saturating_sub(1));
        sink.write(&outcome).context("cannot write the output")?;
        bar.inc(1);
        if failed + retried > 0 {
            bar.set_message(format!("{failed} failed, {retried} retries"));
        }
    }
    sink.flush().context("cannot write the output")?;
    bar.finish_and_clear();
    let finished = bar.position();
    if !args.quiet {
        eprintln!(
            "{finished} items, {failed} failed, {retried} retries{}",
            if skipped > 0 { format!(", {skipped} done before") } else { String::new() }
        );
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// How many items a file holds (lines, less a CSV header), for the progress bar.
fn count_items(path: &Path, format: Format) -> std::io::Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut lines = 0u64;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        lines += buffer.iter().filter(|b| **b == b'\n').count() as u64;
        let read = buffer.len();
        reader.consume(read);
    }
    Ok(if format == Format::Csv { lines.saturating_sub(1) } else { lines })
}

fn progress(quiet: bool, total: Option<u64>) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(total) => (ProgressBar::new(total), "{bar:40} {pos}/{len} items  {per_sec}  eta {eta}  {msg}"),
        None => (ProgressBar::no_length(), "{spinner} {pos} items  {per_sec}  {msg}"),
    };
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}
