//! `artel supervise`: run the services of a TOML file under artel's service manager.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use artel_supervise::{Config, OnHangup, Settings, State};
use clap::{Args, Subcommand};

use super::table::render;

/// Options of `artel supervise`.
#[derive(Debug, Args)]
pub(crate) struct SuperviseArgs {
    /// The services to run (see docs/supervise.md for the format).
    #[arg(long, default_value = "artel.toml")]
    config: PathBuf,
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// List every copy of every service: state, pid, restarts, uptime. Exits 1 when a
    /// copy has failed (it exited too quickly too often and is left stopped).
    Status {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Where the supervisor of `config` answers status requests: beside the file.
fn socket_of(config: &Path) -> PathBuf {
    config.with_extension("sock")
}

pub(crate) fn run(args: SuperviseArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let socket = socket_of(&args.config);
    match args.action {
        Some(Action::Status { json }) => runtime.block_on(status(&socket, json)),
        None => {
            let config = Config::load(&args.config)?;
            let settings = Settings { grace: config.grace, ..Settings::default() };
            let path = args.config.clone();
            let reload = OnHangup::Reload(Box::new(move || match Config::load(&path) {
                Ok(config) => Some(config.programs),
                Err(error) => {
                    tracing::error!(%error, "SIGHUP: keeping the running configuration");
                    None
                }
            }));
            let services: Vec<String> = config.programs.iter().map(|p| format!("{}x{}", p.name, p.copies)).collect();
            tracing::info!(config = %args.config.display(), services = %services.join(", "), socket = %socket.display(), "supervising");
            runtime
                .block_on(artel_supervise::supervise(settings, config.programs, reload, Some(&socket)))
                .context("supervising")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn status(socket: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let copies = artel_supervise::status(socket).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&copies)?);
    } else {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let rows: Vec<Vec<String>> = copies
            .iter()
            .map(|c| {
                vec![
                    format!("{}.{}", c.service, c.copy),
                    format!("{:?}", c.state).to_lowercase(),
                    c.pid.map_or("-".to_owned(), |p| p.to_string()),
                    c.restarts.to_string(),
                    c.since.map_or("-".to_owned(), |s| format!("{}s", now.saturating_sub(s))),
                    c.last_exit.clone().unwrap_or_default(),
                ]
            })
            .collect();
        println!("{}", render(&["copy", "state", "pid", "restarts", "uptime", "last exit"], &rows));
    }
    let failed = copies.iter().any(|c| c.state == State::Failed);
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
