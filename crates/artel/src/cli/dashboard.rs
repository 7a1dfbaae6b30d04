//! `artel dashboard`: the web dashboard for the broker (see docs/dashboard.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use artel_beat::{Beat, LeaderNote, Schedule};
use artel_core::Backend;
use artel_dashboard::{Access, Dashboard, DashboardConfig, Leader, ScheduleEntry, ScheduleView, Schedules};
use clap::Args;

use crate::connect::Connection;

/// Options of `artel dashboard`.
#[derive(Debug, Args)]
pub(crate) struct DashboardArgs {
    /// Where to serve it; an address beyond this machine needs --auth or --token.
    #[arg(long, default_value = "127.0.0.1:5555")]
    listen: SocketAddr,
    /// Ask for this user and password (HTTP Basic), as USER:PASSWORD.
    #[arg(long, env = "ARTEL_DASHBOARD_AUTH", conflicts_with = "token", hide_env_values = true)]
    auth: Option<String>,
    /// Require this token (at least 16 characters): open http://HOST:PORT/?token=TOKEN
    /// once, or send `Authorization: Bearer TOKEN` from scripts.
    #[arg(long, env = "ARTEL_DASHBOARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Show this beat schedule (TOML, as `artel beat --schedule`): entries, next fires,
    /// and the last fires the leading beat recorded on the broker.
    #[arg(long)]
    schedule: Option<PathBuf>,
    /// The name the beats run under (`artel beat --name`).
    #[arg(long, default_value = "beat")]
    beat_name: String,
}

/// A schedule file, read again at each request (edits show at once), with the last
/// fires the beats named `name` recorded on the broker.
#[derive(Debug)]
struct BeatSchedule {
    path: PathBuf,
    name: String,
    backend: Backend,
}

#[async_trait::async_trait]
impl Schedules for BeatSchedule {
    async fn view(&self) -> Result<ScheduleView, String> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("cannot read the schedule {}: {e}", self.path.display()))?;
        let schedule = Schedule::parse(&text).map_err(|problem| format!("{}: {problem}", self.path.display()))?;
        // Reading fenced values takes no lock: the beats' election is left alone.
        let fenced = self.backend.locks().map(|server| server.locks(artel_beat::DEFAULT_LEASE));
        let beat = Beat::new(self.backend.clone()).schedule(schedule);
        let mut entries = Vec::new();
        for (entry, next) in beat.upcoming() {
            let last_fire_ms = match &fenced {
                Some(values) => values.read(&format!("beat.{}.{}", self.name, entry.name)).await.ok().flatten(),
                None => None,
            };
            entries.push(ScheduleEntry {
                name: entry.name.clone(),
                task: entry.signature.task.clone(),
                when: entry.describe(),
                next_fire_ms: next.map(|at| at.timestamp_millis()),
                last_fire_ms,
            });
        }
        let note = LeaderNote::read(&self.backend, &self.name).await.map_err(|e| e.to_string())?;
        let leader = note.map(|note| Leader { node: note.node, since_ms: note.since_ms });
        Ok(ScheduleView { leader, entries })
    }
}

pub(crate) async fn run(connection: Connection, url: &str, args: DashboardArgs) -> anyhow::Result<ExitCode> {
    let access = match (&args.auth, &args.token) {
        (Some(pair), _) => Access::basic(pair).map_err(anyhow::Error::msg)?,
        (None, Some(token)) => Access::token(token).map_err(anyhow::Error::msg)?,
        (None, None) => Access::Open,
    };
    let stop = super::stop_on_signals();
    // On Celery's layouts, tasks and workers come from Celery's events, as in Flower.
    #[cfg(feature = "celery")]
    let backend = match &connection.wire {
        Some(wire) => {
            let monitor =
                Arc::new(artel_celery::EventMonitor::new(wire.clone(), connection.backend.workers().cloned()));
            tokio::spawn({
                let (monitor, stop) = (monitor.clone(), stop.clone());
                async move { monitor.run(stop).await }
            });
            connection.backend.clone().with_history(monitor.history()).with_workers(monitor)
        }
        None => connection.backend.clone(),
    };
    #[cfg(not(feature = "celery"))]
    let backend = connection.backend.clone();
    let schedules = args.schedule.map(|path| {
        Arc::new(BeatSchedule { path, name: args.beat_name, backend: connection.backend.clone() }) as Arc<dyn Schedules>
    });
    let config = DashboardConfig { listen: args.listen, access, broker: artel_core::redact_url(url), schedules };
    let dashboard = Dashboard::bind(backend, config).await.map_err(anyhow::Error::msg)?;
    dashboard.serve(stop).await?;
    tracing::info!("dashboard stopped");
    Ok(ExitCode::SUCCESS)
}
