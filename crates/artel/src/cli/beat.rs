//! `artel beat`: send periodic tasks from a schedule file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use artel_beat::{Beat, Schedule};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::table::render;
use crate::connect::Connection;

/// Options of `artel beat`.
#[derive(Debug, Args)]
pub(crate) struct BeatArgs {
    /// The schedule (TOML; see docs/beat.md).
    #[arg(long, default_value = "beat.toml")]
    schedule: PathBuf,
    /// Where each entry's last fire is kept, so fires missed while no beat ran follow
    /// the entry's `missed` policy (default: the schedule's path with `.state`).
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
    let state = args.state.clone().unwrap_or_else(|| args.schedule.with_extension("state"));
    let beat = Beat::new(connection.backend).schedule(schedule).state_file(&state);
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
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        signals.cancel();
    });
    if let Ok(mut terminate) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        let signals = shutdown.clone();
        tokio::spawn(async move {
            terminate.recv().await;
            signals.cancel();
        });
    }
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
    tracing::info!(schedule = %args.schedule.display(), state = %state.display(), "beat started");
    beat.run(shutdown, reload).await?;
    tracing::info!("beat stopped");
    Ok(ExitCode::SUCCESS)
}
