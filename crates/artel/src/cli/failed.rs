//! `artel failed`: tasks that failed for good (FAILURE after their retries), kept by the
//! broker (sqlite://, redis://) to be looked at and run again, like RQ's failed registry.

use std::process::ExitCode;

use anyhow::Context;
use artel_core::{FailedFilter, FailedTasks};
use clap::Subcommand;

use super::table::{count, render, shorten, utc};

/// `artel failed ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum FailedCommand {
    /// List failed tasks, newest first: when, queue, task, id, attempts, worker, error, args.
    List {
        /// Only this queue.
        #[arg(short = 'Q', long)]
        queue: Option<String>,
        /// Only this task (its registered name).
        #[arg(long)]
        task: Option<String>,
        /// Only those that failed within this long: 90s, 15m, 1h, 2d.
        #[arg(long, value_parser = parse_age)]
        since: Option<chrono::Duration>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Publish failed tasks again (retry count reset, result PENDING until they finish).
    Retry {
        /// Task ids to run again.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<String>,
        /// Every recorded failure.
        #[arg(long)]
        all: bool,
    },
}

/// `90s`, `15m`, `1h`, `2d`.
fn parse_age(text: &str) -> Result<chrono::Duration, String> {
    let bad = || format!("{text:?} is not an age such as 90s, 15m, 1h or 2d");
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    let age = match unit {
        "s" => chrono::Duration::try_seconds(n),
        "m" => chrono::Duration::try_minutes(n),
        "h" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        _ => None,
    };
    age.filter(|age| *age >= chrono::Duration::zero()).ok_or_else(bad)
}

pub(crate) async fn failed(store: &dyn FailedTasks, command: FailedCommand) -> anyhow::Result<ExitCode> {
    match command {
        FailedCommand::List { queue, task, since, limit, json } => {
            let since_ms = since.map(|age| (chrono::Utc::now() - age).timestamp_millis());
            let failures = store.failed_list(&FailedFilter { queue, task, since_ms, limit }).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&failures).context("encoding the list")?);
            } else if failures.is_empty() {
                println!("no failed tasks");
            } else {
                let rows: Vec<Vec<String>> = failures
                    .into_iter()
                    .map(|f| {
                        vec![
                            utc(f.failed_at_ms),
                            f.queue,
                            f.task,
                            f.task_id,
                            f.attempts.to_string(),
                            f.worker,
                            shorten(&f.error, 60),
                            shorten(&f.args, 40),
                        ]
                    })
                    .collect();
                let header = ["failed at (UTC)", "queue", "task", "id", "attempts", "worker", "error", "args"];
                println!("{}", render(&header, &rows));
            }
        }
        FailedCommand::Retry { ids, all } => {
            let ids = (!all).then_some(ids.as_slice());
            let published = store.failed_retry(ids).await?;
            println!("published {} again", count(published, "failed task"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_age;

    #[test]
    fn ages_read_seconds_minutes_hours_and_days() {
        assert_eq!(parse_age("90s"), Ok(chrono::Duration::seconds(90)));
        assert_eq!(parse_age("2d"), Ok(chrono::Duration::days(2)));
        for bad in ["", "h", "1w", "-1h", "99999999999999999d"] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }
}
