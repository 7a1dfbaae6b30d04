//! `artel map`: calls a task once per item of a file, `--concurrency` at a time, with an
//! optional shared rate, retries with backoff and jitter, a per-call timeout, and one
//! JSON line per item written as calls finish (or in input order). Memory stays flat in
//! the input's size: items are read as calls free up, at most `--concurrency` calls and
//! one output batch are held. `--resume` after a crash or Ctrl-C skips the items whose
//! lines are already in the output.

mod input;
mod output;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use artel_core::{Arguments, Backoff, Context, Handler, TaskError, TaskErrorKind};
use clap::Args;
use futures_util::{Stream, StreamExt, stream};
use governor::{DefaultDirectRateLimiter, RateLimiter};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

use crate::Registry;
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
    /// The first retry's longest wait, in seconds; it doubles with each retry, up to 60 s.
    #[arg(long, default_value_t = 0.5)]
    backoff: f64,
    /// Seconds a call may take; then it counts as failed (and is retried).
    #[arg(long)]
    timeout: Option<f64>,
    /// Write results in input order (holding at most --concurrency of them), not as they finish.
    #[arg(long)]
    ordered: bool,
    /// Also write the failed items' lines here.
    #[arg(long)]
    failures: Option<PathBuf>,
    /// Skip the items whose lines are already in --output (after a crash or Ctrl-C) and
    /// append the rest: each item ends up there once.
    #[arg(long)]
    resume: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Guarded built-in tasks to allow (`exec`, `http`), as for `artel worker --enable`.
    #[arg(long, value_delimiter = ',')]
    enable: Vec<String>,
}

/// What every call shares.
struct Plan {
    handler: Arc<dyn Handler>,
    task: String,
    args: Option<Template>,
    kwargs: Option<Template>,
    rate: Option<DefaultDirectRateLimiter>,
    retries: u32,
    backoff: Backoff,
    timeout: Option<Duration>,
}

impl Plan {
    /// The call's arguments from `item`.
    fn arguments(&self, item: &Value) -> Result<(Vec<Value>, Map<String, Value>), String> {
        let args = match &self.args {
            Some(template) => match template.fill(item)? {
                Value::Array(args) => args,
                other => vec![other],
            },
            None if self.kwargs.is_some() => Vec::new(),
            None => vec![item.clone()],
        };
        let kwargs = match &self.kwargs {
            Some(template) => match template.fill(item)? {
                Value::Object(kwargs) => kwargs,
                other => return Err(format!("--kwargs must make an object, it made {other}")),
            },
            None => Map::new(),
        };
        Ok((args, kwargs))
    }

    /// Calls the task for item `index`, retrying as asked.
    async fn call(&self, index: u64, item: Result<Value, String>) -> Outcome {
        let started = Instant::now();
        let (input, prepared) = match item {
            Ok(item) => {
                let prepared = self.arguments(&item);
                (item, prepared)
            }
            Err(error) => (Value::Null, Err(error)),
        };
        let mut attempts = 0;
        let result = match prepared {
            Err(error) => Err(error),
            Ok((args, kwargs)) => loop {
                attempts += 1;
                if let Some(rate) = &self.rate {
                    rate.until_ready().await;
                }
                let ctx = Context::detached(format!("map-{index}-{attempts}"), self.task.clone());
                let call = self.handler.call(Arguments::new(args.clone(), kwargs.clone()), ctx);
                let outcome = match self.timeout {
                    Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                        Err(TaskError::of_kind(TaskErrorKind::TimedOut, format!("no answer within {limit:?}")))
                    }),
                    None => call.await,
                };
                match outcome {
                    Ok(value) => break Ok(value),
                    Err(error) if attempts <= self.retries && retryable(&error) => {
                        tokio::time::sleep(self.backoff.delay(attempts, fastrand::f64())).await;
                    }
                    Err(error) => break Err(error.to_string()),
                }
            },
        };
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Outcome { index, input, result, attempts, ms }
    }
}

/// Whether another attempt could end differently: not when the arguments are wrong.
fn retryable(error: &TaskError) -> bool {
    !matches!(error.kind(), TaskErrorKind::InvalidArguments | TaskErrorKind::NotRegistered)
}

pub(crate) fn run(args: MapArgs, mut tasks: Registry, broker: Option<&str>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        broker.is_none(),
        "`artel map` runs the calls in this process; sending them to workers (--broker) is not available yet: \
         drop --broker (and ARTEL_BROKER)"
    );
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.backoff >= 0.0 && args.backoff.is_finite(), "--backoff must be 0 or more seconds");
    for name in &args.enable {
        crate::builtins::enable(&mut tasks, name).map_err(anyhow::Error::msg)?;
    }
    let handler = tasks.get(&args.task).cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "no task {:?} here: this binary runs {} (see `artel tasks`)",
            args.task,
            tasks.names().join(", ")
        )
    })?;
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
    let plan = Plan {
        handler,
        task: args.task.clone(),
        args: args.args.as_deref().map(|t| Template::parse(t, "--args")).transpose().map_err(anyhow::Error::msg)?,
        kwargs: args
            .kwargs
            .as_deref()
            .map(|t| Template::parse(t, "--kwargs"))
            .transpose()
            .map_err(anyhow::Error::msg)?,
        rate,
        retries: args.retries,
        backoff: Backoff {
            multiplier: Duration::from_secs_f64(args.backoff),
            max: Duration::from_secs(60),
            ..Backoff::default()
        },
        timeout,
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(map(&args, &plan))
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
    let done = match (args.resume, args.output.as_str()) {
        (false, _) => output::Done::default(),
        (true, "-") => anyhow::bail!("--resume reads what the output already holds: give --output FILE"),
        (true, path) => output::done_in(Path::new(path)).with_context(|| format!("cannot read the output {path}"))?,
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
    let mut sink = Sink::new(out, failures);
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
