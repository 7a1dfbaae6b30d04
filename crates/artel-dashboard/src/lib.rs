//! `artel dashboard`: a broker's queues, tasks, dead letters and workers in a browser,
//! updated live over server-sent events, with every page's data under `/api/` (see
//! docs/dashboard.md) and queue depths for Prometheus on `/metrics`.
//!
//! Invariants:
//! - it binds to a loopback address unless access is guarded (`--auth` or `--token`);
//! - every action is a POST carrying the page's CSRF token in `X-Artel-Csrf`, which
//!   another site's page can neither read nor send;
//! - broker URLs are shown with their passwords removed; no secret is ever rendered;
//! - every asset is embedded in the binary: it works offline, fetches nothing elsewhere;
//! - what the broker cannot offer (a task history on Celery's layouts, say) is answered
//!   with 501 and the reason, never guessed.

mod access;
mod api;
mod assets;
mod depth;
mod live;
mod schedules;

use std::net::SocketAddr;
use std::sync::Arc;

use artel_core::Backend;
use axum::Router;
use tokio_util::sync::CancellationToken;

pub use access::Access;
pub use schedules::{Leader, ScheduleEntry, ScheduleView, Schedules};

/// Settings of a dashboard.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// Where to listen; a loopback address unless `access` guards it.
    pub listen: SocketAddr,
    /// Who may look and act.
    pub access: Access,
    /// The broker as shown on the page (its URL, password removed).
    pub broker: String,
    /// The beat schedule to show, if any.
    pub schedules: Option<Arc<dyn Schedules>>,
}

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) backend: Backend,
    pub(crate) broker: String,
    pub(crate) csrf: String,
    pub(crate) access: Access,
    pub(crate) schedules: Option<Arc<dyn Schedules>>,
    pub(crate) shutdown: CancellationToken,
}

/// A dashboard bound to its address, ready to serve.
#[derive(Debug)]
pub struct Dashboard {
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
}

impl Dashboard {
    /// Binds `config.listen` for `backend`; refuses an address beyond this machine
    /// without access control.
    pub async fn bind(backend: Backend, config: DashboardConfig) -> Result<Self, String> {
        if !config.listen.ip().is_loopback() && config.access == Access::Open {
            return Err(format!(
                "refusing to serve the dashboard on {} without access control: add --auth USER:PASSWORD or --token TOKEN, or listen on 127.0.0.1",
                config.listen
            ));
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {} (in use? choose another --listen): {e}", config.listen))?;
        let shared = Shared {
            backend,
            broker: config.broker,
            csrf: uuid::Uuid::new_v4().simple().to_string(),
            access: config.access,
            schedules: config.schedules,
            shutdown: CancellationToken::new(),
        };
        Ok(Self { listener, shared: Arc::new(shared) })
    }

    /// The address it listens on (the port chosen when `listen` asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` fires; live streams end with it.
    pub async fn serve(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let address = self.local_addr()?;
        tracing::info!(%address, broker = %self.shared.broker, "dashboard at http://{address}/");
        let stop = self.shared.shutdown.clone();
        let app = router(self.shared);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.cancelled().await;
                stop.cancel();
            })
            .await
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(assets::routes())
        .merge(api::routes())
        .merge(live::routes())
        .merge(depth::routes())
        .merge(schedules::routes())
        .layer(axum::middleware::from_fn_with_state(shared.clone(), access::guard))
        .with_state(shared)
}
