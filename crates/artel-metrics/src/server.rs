//! [`MetricsServer`]: serves a worker's [`Metrics`] on `GET /metrics` for as long as the
//! worker runs.

use std::net::SocketAddr;
use std::sync::Arc;

use artel_core::worker::{Component, ComponentError, Scope};
use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Metrics;

/// The OpenMetrics text format, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A worker component serving `metrics` on `listen`.
#[derive(Debug, Clone)]
pub struct MetricsServer {
    listen: SocketAddr,
    metrics: Arc<Metrics>,
}

impl MetricsServer {
    /// Serves `metrics` on `listen` (e.g. `127.0.0.1:9808`).
    pub fn new(listen: SocketAddr, metrics: Arc<Metrics>) -> Self {
        Self { listen, metrics }
    }
}

type Shared = (Arc<Metrics>, Arc<artel_core::worker::WorkerStats>);

async fn scrape(State((metrics, stats)): State<Shared>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.encode(Some(&stats)))
}

#[async_trait]
impl Component for MetricsServer {
    fn name(&self) -> &'static str {
        "metrics server"
    }

    async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
        let listener = tokio::net::TcpListener::bind(self.listen).await.map_err(|e| {
            ComponentError::Fatal(format!(
                "cannot serve metrics on {} (in use? choose another --metrics address): {e}",
                self.listen
            ))
        })?;
        if !self.listen.ip().is_loopback() {
            tracing::info!(listen = %self.listen, "metrics are served beyond this machine: they name tasks and queues, nothing secret");
        }
        tracing::info!(listen = %self.listen, "serving metrics on /metrics");
        let app = Router::new().route("/metrics", get(scrape)).with_state((self.metrics.clone(), scope.stats.clone()));
        let shutdown = scope.shutdown.clone();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .map_err(|e| ComponentError::Failed(format!("metrics server on {}: {e}", self.listen)))
    }
}
