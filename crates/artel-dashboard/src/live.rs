//! `GET /api/live`: server-sent events every [`EVERY`] — `overview` (the overview page's
//! data) and `tasks` (the newest task records) — so pages change without reloads. A
//! stream ends when the dashboard shuts down, so shutdown never waits on a browser.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::Stream;

use crate::Shared;
use crate::api::{TaskQuery, overview_of, recent};

/// How often the live stream sends.
const EVERY: Duration = Duration::from_secs(1);

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/api/live", get(live))
}

async fn live(State(shared): State<Arc<Shared>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures_util::stream::unfold((shared, true), |(shared, first)| async move {
        if !first {
            tokio::select! {
                _ = shared.shutdown.cancelled() => return None,
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
        let events = snapshot(&shared).await;
        Some((futures_util::stream::iter(events.into_iter().map(Ok)), (shared, false)))
    });
    Sse::new(futures_util::StreamExt::flatten(stream)).keep_alive(KeepAlive::default())
}

/// The events of one tick; a failing read becomes an `error` event the page shows.
async fn snapshot(shared: &Shared) -> Vec<Event> {
    let mut events = Vec::with_capacity(2);
    let overview = overview_of(shared).await.map(|o| serde_json::to_string(&o));
    events.push(match overview {
        Ok(Ok(json)) => Event::default().event("overview").data(json),
        Ok(Err(e)) => Event::default().event("error").data(e.to_string()),
        Err(e) => Event::default().event("error").data(format!("{e:?}")),
    });
    if shared.backend.history().is_some() {
        let tasks = recent(shared, TaskQuery::default()).await.map(|t| serde_json::to_string(&t));
        if let Ok(Ok(json)) = tasks {
            events.push(Event::default().event("tasks").data(json));
        }
    }
    events
}
