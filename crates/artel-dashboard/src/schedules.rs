//! `GET /api/schedules`: the beat that leads, the entries, their next fires and the last
//! fire the leading beat recorded. The dashboard reads a schedule through [`Schedules`], which the
//! command line implements with `artel-beat` (`artel dashboard --schedule beat.toml`).

use std::sync::Arc;

use async_trait::async_trait;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;

use crate::Shared;
use crate::api::ApiError;

/// One entry of a schedule as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleEntry {
    /// The entry's name.
    pub name: String,
    /// The task it sends.
    pub task: String,
    /// When it fires (`every 30s`, `cron 0 9 * * MON-FRI (Europe/Paris)`).
    pub when: String,
    /// Its next fire, in unix milliseconds; none when it never fires again.
    pub next_fire_ms: Option<i64>,
    /// Up to when the leading beat has handled its fires (sent, or skipped by the
    /// missed-run policy), in unix milliseconds, where kept.
    pub last_fire_ms: Option<i64>,
}

/// The beat that took the lead, as it noted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leader {
    /// The leading beat (`beat.<pid>@<host>`).
    pub node: String,
    /// When it took the lead, in unix milliseconds.
    pub since_ms: i64,
}

/// A schedule as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleView {
    /// The beat that leads (or last led), if one noted it.
    pub leader: Option<Leader>,
    /// The entries, in the file's order.
    pub entries: Vec<ScheduleEntry>,
}

/// A schedule to show.
#[async_trait]
pub trait Schedules: Send + Sync + std::fmt::Debug {
    /// The schedule now; an error says what is wrong with it.
    async fn view(&self) -> Result<ScheduleView, String>;
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/api/schedules", get(schedules))
}

async fn schedules(State(shared): State<Arc<Shared>>) -> Result<Json<ScheduleView>, ApiError> {
    let Some(schedules) = &shared.schedules else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "no schedule to show: start the dashboard with --schedule beat.toml (and --beat-name, if not `beat`)",
        ));
    };
    schedules.view().await.map(Json).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))
}
