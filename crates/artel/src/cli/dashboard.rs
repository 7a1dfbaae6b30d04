//! `artel dashboard`: the web dashboard for the broker (see docs/dashboard.md).

use std::net::SocketAddr;
use std::process::ExitCode;

use artel_dashboard::{Access, Dashboard, DashboardConfig};
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
}

pub(crate) async fn run(connection: Connection, url: &str, args: DashboardArgs) -> anyhow::Result<ExitCode> {
    let access = match (&args.auth, &args.token) {
        (Some(pair), _) => Access::basic(pair).map_err(anyhow::Error::msg)?,
        (None, Some(token)) => Access::token(token).map_err(anyhow::Error::msg)?,
        (None, None) => Access::Open,
    };
    let config = DashboardConfig { listen: args.listen, access, broker: artel_core::redact_url(url) };
    let dashboard = Dashboard::bind(connection.backend, config).await.map_err(anyhow::Error::msg)?;
    dashboard.serve(super::stop_on_signals()).await?;
    tracing::info!("dashboard stopped");
    Ok(ExitCode::SUCCESS)
}
