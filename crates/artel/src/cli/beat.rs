//! `artel beat`: send periodic tasks from a schedule file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use artel_beat::{Beat, Schedule};
use clap::Args;

use super::table::render;
use crate::connect::Connection;

/// Options of `artel beat`.
#[derive(Debug, Args)]
pub(crate) struct BeatArgs {
    /// The schedule (TOML; see docs/beat.md).
    #[arg(long, default_value = "beat.toml")]
    schedule: PathBuf,
    /// Beats with the same name on one broker elect one leader that sends the schedule;
    /// the others wait to take over.
    #[arg(long, default_value = "beat")]
    name: String,
    /// How long the leader's lock outlives a leader that died: another beat takes over
    /// within it (e.g. `10s`, `500ms`).
    #[arg(long, default_value = "10s", value_parser = artel_beat::parse_duration)]
    lease: Duration,
    /// Keep each entry's last fire in this file instead of on the broker: one beat only,
    /// no election (for brokers without locks).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Print the entries and their next fire times, then exit.
    #[arg(long)]
    list: bool,
}

fn load(path: &Path) -> anyhow::Result<Schedule> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the schedule {}", path.display()))?;
    Schedule::parse(&text).map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

pub(crate) async fn run(connection: Connection, args: BeatArgs) -> anyhow::Result<ExitCode> {
    let schedule = load(&args.schedule)?;
    let locks = connection.backend.locks().map(|server| server.locks(args.lease));
    let mut beat = Beat::new(connection.backend).schedule(schedule);
    let memory = match (&args.state, locks) {
        (Some(state), _) => {
            beat = beat.state_file(state);
            format!("state file {}", state.display())
        }
        (None, Some(locks)) => {
            beat = beat.leader(locks, &args.name);
            format!("leader election {:?} on the broker, lease {:?}", args.name, args.lease)
        }
        (None, None) => {
            let state = args.schedule.with_extension("state");
            beat = beat.state_file(&state);
            format!("state file {} (this broker offers no locks: run one beat)", state.display())
        }
    };
    if args.list {
        let rows: Vec<Vec<String>> = beat
            .upcoming()
            .into_iter()
            .map(|(entry, next)| {
                vec![
                    entry.name.clone(),
                    entry.signature.task.clone(),
                    entry.describe(),
                    next.map_or("never".to_owned(), |at| at.to_rfc3339()),
                ]
            })
            .collect();
        println!("{}", render(&["entry", "task", "when", "next fire"], &rows));
        return Ok(ExitCode::SUCCESS);
    }
    let shutdown = super::stop_on_signals();
    let path = args.schedule.clone();
    let mut seen = modified(&path);
    let reload = move || {
        let now = modified(&path);
        if now == seen {
            return None;
        }
        seen = now;
        match load(&path) {
            Ok(schedule) => Some(schedule),
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "keeping the running schedule");
                None
            }
        }
    };
    tracing::info!(schedule = %args.schedule.display(), %memory, "beat started");
    beat.run(shutdown, reload).await?;
    tracing::info!("beat stopped");
    Ok(ExitCode::SUCCESS)
}
