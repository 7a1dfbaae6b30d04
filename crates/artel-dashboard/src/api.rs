//! The JSON API under `/api/`: each page's data, and the actions (POST). Shapes are
//! documented in docs/dashboard.md; the CLI's `--json` outputs print the same records.

use std::sync::Arc;

use artel_core::{
    BrokerError, FailedFilter, Minute, Revocation, State as TaskState, TaskFilter, TaskRecord, TaskResult, Timestamp,
};
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Shared;

/// Rows a list returns when the request names no limit, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

/// How long a revocation is kept for workers to read.
const REVOKE_KEEP: chrono::Duration = chrono::Duration::hours(24);

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/overview", get(overview))
        .route("/api/queues", get(queues))
        .route("/api/queues/{queue}/purge", post(purge_queue))
        .route("/api/tasks", get(tasks))
        .route("/api/tasks/{id}", get(task))
        .route("/api/tasks/{id}/revoke", post(revoke))
        .route("/api/dead", get(dead))
        .route("/api/dead/retry", post(dead_retry))
        .route("/api/dead/purge", post(dead_purge))
        .route("/api/failed", get(failed))
        .route("/api/failed/retry", post(failed_retry))
        .route("/api/workers", get(workers))
        .route("/api/workers/{name}/stop", post(stop_worker))
}

/// An answer that is not the data: what went wrong, as `{"error": ...}`.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError(status, message.into())
    }

    fn not_offered(what: &str) -> Self {
        ApiError(StatusCode::NOT_IMPLEMENTED, format!("this broker {what}"))
    }
}

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        ApiError(StatusCode::BAD_GATEWAY, format!("the broker failed: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type Answer<T> = Result<Json<T>, ApiError>;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The overview page: workers, queue depths, and the last hour's throughput.
#[derive(Debug, Serialize)]
pub(crate) struct Overview {
    broker: String,
    now_ms: i64,
    workers: Vec<Worker>,
    queues: Vec<artel_core::QueueCounts>,
    /// Finished tasks per minute over the last hour, oldest first, every minute listed.
    throughput: Vec<Minute>,
    last_hour: LastHour,
}

#[derive(Debug, Serialize)]
struct LastHour {
    succeeded: u64,
    failed: u64,
    failure_rate: f64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Worker {
    name: String,
    heartbeat_at_ms: i64,
    alive: bool,
    stats: Value,
}

pub(crate) async fn overview_of(shared: &Shared) -> Result<Overview, ApiError> {
    let now = now_ms();
    let workers = match shared.backend.workers() {
        Some(registry) => registry.workers().await?.into_iter().map(|w| worker(w, now)).collect(),
        None => Vec::new(),
    };
    let queues = match shared.backend.inspect() {
        Some(inspect) => inspect.queue_counts().await?,
        None => Vec::new(),
    };
    let this_minute = Minute::start(now);
    let first = this_minute - 59 * 60_000;
    let counted = match shared.backend.history() {
        Some(history) => history.throughput(first).await?,
        None => Vec::new(),
    };
    let throughput: Vec<Minute> = (0..60)
        .map(|i| {
            let at_ms = first + i * 60_000;
            counted.iter().find(|m| m.at_ms == at_ms).copied().unwrap_or(Minute { at_ms, ..Minute::default() })
        })
        .collect();
    let (succeeded, failed) = throughput.iter().fold((0, 0), |(s, f), m| (s + m.succeeded, f + m.failed));
    let finished = succeeded + failed;
    let failure_rate = if finished == 0 { 0.0 } else { failed as f64 / finished as f64 };
    Ok(Overview {
        broker: shared.broker.clone(),
        now_ms: now,
        workers,
        queues,
        throughput,
        last_hour: LastHour { succeeded, failed, failure_rate },
    })
}

fn worker(report: artel_core::WorkerReport, now: i64) -> Worker {
    Worker {
        alive: report.is_alive(now),
        name: report.name,
        heartbeat_at_ms: report.heartbeat_at_ms,
        stats: report.stats,
    }
}

async fn overview(State(shared): State<Arc<Shared>>) -> Answer<Overview> {
    Ok(Json(overview_of(&shared).await?))
}

async fn queues(State(shared): State<Arc<Shared>>) -> Answer<Vec<artel_core::QueueCounts>> {
    let inspect = shared.backend.inspect().ok_or_else(|| ApiError::not_offered("cannot count its queues"))?;
    Ok(Json(inspect.queue_counts().await?))
}

async fn purge_queue(State(shared): State<Arc<Shared>>, Path(queue): Path<String>) -> Answer<Value> {
    let purged = shared.backend.broker().purge(&queue).await?;
    tracing::info!(%queue, purged, "queue purged from the dashboard");
    Ok(Json(json!({ "queue": queue, "purged": purged })))
}

/// `/api/tasks` filters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TaskQuery {
    state: Option<String>,
    task: Option<String>,
    queue: Option<String>,
    since_ms: Option<i64>,
    limit: Option<usize>,
}

impl TaskQuery {
    fn filter(self) -> Result<TaskFilter, ApiError> {
        let state = match self.state.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(name) => Some(
                TaskState::ALL
                    .into_iter()
                    .find(|s| s.as_str().eq_ignore_ascii_case(name))
                    .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, format!("no task state is called {name:?}")))?,
            ),
        };
        let some = |v: Option<String>| v.filter(|v| !v.is_empty());
        Ok(TaskFilter {
            state,
            task: some(self.task),
            queue: some(self.queue),
            since_ms: self.since_ms,
            limit: self.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT),
        })
    }
}

pub(crate) async fn recent(shared: &Shared, query: TaskQuery) -> Result<Vec<TaskRecord>, ApiError> {
    let history = shared.backend.history().ok_or_else(|| ApiError::not_offered("keeps no task history"))?;
    Ok(history.recent(&query.filter()?).await?)
}

async fn tasks(State(shared): State<Arc<Shared>>, Query(query): Query<TaskQuery>) -> Answer<Vec<TaskRecord>> {
    Ok(Json(recent(&shared, query).await?))
}

/// A task's page: its record, its stored result, and its relatives.
#[derive(Debug, Serialize)]
struct TaskPage {
    task_id: String,
    record: Option<TaskRecord>,
    result: Option<TaskResult>,
    /// Ids of the tasks it started (from its result), to link to.
    children: Vec<String>,
}

async fn task(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Answer<TaskPage> {
    let record = match shared.backend.history() {
        Some(history) => history.find(&id).await?,
        None => None,
    };
    let result = shared.backend.results().get(&id).await?;
    let children = result.as_ref().map(|r| r.children.iter().filter_map(child_id).collect()).unwrap_or_default();
    if record.is_none() && result.is_none() {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no task {id} in the history or the results")));
    }
    Ok(Json(TaskPage { task_id: id, record, result, children }))
}

/// A child's id in Celery's result tuples: `[[id, parent], children]`, or a group's
/// `[[group id, parent], [members...]]`.
fn child_id(tuple: &Value) -> Option<String> {
    tuple.get(0)?.get(0)?.as_str().map(str::to_owned)
}

#[derive(Debug, Default, Deserialize)]
struct Revoke {
    #[serde(default)]
    terminate: bool,
}

async fn revoke(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Option<Json<Revoke>>,
) -> Answer<Value> {
    let terminate = body.is_some_and(|Json(b)| b.terminate);
    let expires_at: Timestamp = (chrono::Utc::now() + REVOKE_KEEP).fixed_offset();
    let revocation = Revocation { task_id: id.clone(), terminate, expires_at };
    shared.backend.revocations().revoke(&revocation).await?;
    tracing::info!(task_id = %id, terminate, "task revoked from the dashboard");
    Ok(Json(json!({ "task_id": id, "terminate": terminate })))
}

/// `?queue=` (all when absent) and `?limit=`.
#[derive(Debug, Default, Deserialize)]
struct QueueQuery {
    queue: Option<String>,
    limit: Option<usize>,
}

/// An action's optional `{"queue": ...}` body.
#[derive(Debug, Default, Deserialize)]
struct QueueBody {
    queue: Option<String>,
}

async fn dead(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<QueueQuery>,
) -> Answer<Vec<artel_core::DeadMessage>> {
    let inspect = shared.backend.inspect().ok_or_else(|| ApiError::not_offered("keeps no dead letters"))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    Ok(Json(inspect.dead_list(query.queue.as_deref().filter(|q| !q.is_empty()), limit).await?))
}

async fn dead_retry(State(shared): State<Arc<Shared>>, body: Option<Json<QueueBody>>) -> Answer<Value> {
    let control = shared.backend.control().ok_or_else(|| ApiError::not_offered("keeps no dead letters"))?;
    let queue = body.and_then(|Json(b)| b.queue);
    let retried = control.dead_retry(queue.as_deref()).await?;
    tracing::info!(queue = queue.as_deref().unwrap_or("all"), retried, "dead letters retried from the dashboard");
    Ok(Json(json!({ "retried": retried })))
}

async fn dead_purge(State(shared): State<Arc<Shared>>, body: Option<Json<QueueBody>>) -> Answer<Value> {
    let control = shared.backend.control().ok_or_else(|| ApiError::not_offered("keeps no dead letters"))?;
    let queue = body.and_then(|Json(b)| b.queue);
    let purged = control.dead_purge(queue.as_deref()).await?;
    tracing::info!(queue = queue.as_deref().unwrap_or("all"), purged, "dead letters purged from the dashboard");
    Ok(Json(json!({ "purged": purged })))
}

async fn failed(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<QueueQuery>,
) -> Answer<Vec<artel_core::FailedTask>> {
    let store = shared.backend.failed().ok_or_else(|| ApiError::not_offered("keeps no failed tasks"))?;
    let filter = FailedFilter {
        queue: query.queue.filter(|q| !q.is_empty()),
        limit: query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT),
        ..FailedFilter::default()
    };
    Ok(Json(store.failed_list(&filter).await?))
}

/// `{"task_ids": [...]}`, all when absent.
#[derive(Debug, Default, Deserialize)]
struct FailedBody {
    task_ids: Option<Vec<String>>,
}

async fn failed_retry(State(shared): State<Arc<Shared>>, body: Option<Json<FailedBody>>) -> Answer<Value> {
    let store = shared.backend.failed().ok_or_else(|| ApiError::not_offered("keeps no failed tasks"))?;
    let ids = body.and_then(|Json(b)| b.task_ids);
    let retried = store.failed_retry(ids.as_deref()).await?;
    tracing::info!(retried, "failed tasks run again from the dashboard");
    Ok(Json(json!({ "retried": retried })))
}

async fn workers(State(shared): State<Arc<Shared>>) -> Answer<Vec<Worker>> {
    let registry = shared.backend.workers().ok_or_else(|| ApiError::not_offered("keeps no worker reports"))?;
    let now = now_ms();
    Ok(Json(registry.workers().await?.into_iter().map(|w| worker(w, now)).collect()))
}

async fn stop_worker(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Answer<Value> {
    let registry = shared.backend.workers().ok_or_else(|| ApiError::not_offered("keeps no worker reports"))?;
    if !registry.request_stop(&name).await? {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no worker {name} reports here")));
    }
    tracing::info!(worker = %name, "worker asked to stop from the dashboard");
    Ok(Json(json!({ "worker": name, "stopping": true })))
}
