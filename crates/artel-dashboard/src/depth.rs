//! `GET /metrics`: queue depths for Prometheus, read from the broker at each scrape —
//! exported here, once, rather than by every worker (whose own metrics are per process).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::Shared;

/// The OpenMetrics text format, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Depth {
    queue: String,
    state: &'static str,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(shared): State<Arc<Shared>>) -> Response {
    let Some(inspect) = shared.backend.inspect() else {
        return (StatusCode::NOT_IMPLEMENTED, "this broker cannot count its queues").into_response();
    };
    let counts = match inspect.queue_counts().await {
        Ok(counts) => counts,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("the broker failed: {e}")).into_response(),
    };
    let depths = Family::<Depth, Gauge>::default();
    for c in &counts {
        for (state, n) in [("ready", c.ready), ("delayed", c.delayed), ("leased", c.leased), ("dead", c.dead)] {
            depths.get_or_create(&Depth { queue: c.queue.clone(), state }).set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
    let mut registry = Registry::default();
    registry.register("artel_queue_messages", "Messages in a queue by state (ready, delayed, leased, dead)", depths);
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics: {e}")).into_response();
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}
