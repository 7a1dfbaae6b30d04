//! [`EventMonitor`]: what Flower sees on Celery's layouts. Celery's task and worker events
//! (docs/wire-format.md §e), from Python workers and artel workers started with `-E`, are
//! folded into a task history ([`MemoryHistory`]) and a worker list, so the dashboard shows
//! tasks and workers there as it does on the native brokers.
//!
//! Like Flower it asks every worker to send task events (`enable_events`) every 5 s, so
//! workers started later (whose mailbox may open after their first heartbeat) send them. Events are a live feed: the
//! history holds what was seen since the monitor started, bounded like every history.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artel_core::memory::MemoryHistory;
use artel_core::{BrokerResult, State, TaskHistory, TaskRecord, WorkerRegistry, WorkerReport};
use async_trait::async_trait;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::wire::Wire;

/// How often workers are asked (again) to send task events (Flower's interval).
const ENABLE_EVERY: Duration = Duration::from_secs(5);

/// Pause before subscribing again after the event feed broke.
const RESUBSCRIBE: Duration = Duration::from_secs(1);

/// Celery's events folded into a history and a worker list.
#[derive(Debug)]
pub struct EventMonitor {
    wire: Arc<dyn Wire>,
    history: MemoryHistory,
    workers: Mutex<BTreeMap<String, WorkerReport>>,
    /// Tasks each worker finished since the monitor started: (succeeded, failed).
    finished: Mutex<HashMap<String, (u64, u64)>>,
    /// Worker reports kept on the broker (artel workers), listed beside those of events.
    reports: Option<Arc<dyn WorkerRegistry>>,
}

impl EventMonitor {
    /// A monitor of `wire`'s events; `reports`, where the broker keeps worker reports,
    /// adds the workers that report there.
    pub fn new(wire: Arc<dyn Wire>, reports: Option<Arc<dyn WorkerRegistry>>) -> Self {
        Self { wire, history: MemoryHistory::default(), workers: Mutex::default(), finished: Mutex::default(), reports }
    }

    /// The tasks seen, as a task history.
    pub fn history(&self) -> Arc<dyn TaskHistory> {
        Arc::new(self.history.clone())
    }

    /// Follows the events until `shutdown` fires, subscribing again when the feed breaks.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut enable = tokio::time::interval(ENABLE_EVERY);
        'subscribe: loop {
            let mut events = match self.wire.events().await {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(%error, "cannot subscribe to Celery's events; trying again");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(RESUBSCRIBE) => continue 'subscribe,
                    }
                }
            };
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = enable.tick() => self.enable_events().await,
                    body = events.recv() => match body {
                        Some(body) => self.fold(&body).await,
                        None => {
                            tracing::warn!("the event feed closed; subscribing again");
                            continue 'subscribe;
                        }
                    },
                }
            }
        }
    }

    /// Asks every worker to send task events (Celery's `enable_events`, as Flower does).
    async fn enable_events(&self) {
        let request =
            json!({"method": "enable_events", "arguments": {}, "destination": null, "pattern": null, "matcher": null});
        if let Err(error) = self.wire.broadcast(request.to_string().as_bytes()).await {
            tracing::warn!(%error, "cannot ask the workers to send task events");
        }
    }

    /// Folds one event body (an event, or a list of task events) in; anything else is
    /// skipped: a monitor never stops on what a sender wrote.
    pub async fn fold(&self, body: &[u8]) {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(events)) => {
                for event in &events {
                    self.apply(event).await;
                }
            }
            Ok(event @ Value::Object(_)) => self.apply(&event).await,
            _ => tracing::debug!(bytes = body.len(), "skipping an event that is not JSON"),
        }
    }

    async fn apply(&self, event: &Value) {
        let text = |key: &str| event.get(key).and_then(Value::as_str).map(str::to_owned);
        let (Some(kind), hostname) = (text("type"), text("hostname").unwrap_or_default()) else { return };
        let at_ms = event.get("timestamp").and_then(Value::as_f64).map_or_else(now_ms, |t| (t * 1000.0) as i64);
        if let Some(worker_event) = kind.strip_prefix("worker-") {
            return self.worker(worker_event, &hostname, event);
        }
        let Some(id) = text("uuid") else { return };
        let mut record = match self.history.find(&id).await {
            Ok(Some(record)) => record,
            _ => TaskRecord::new(&id, "", at_ms),
        };
        let state = match kind.as_str() {
            "task-sent" => {
                record.sent_at_ms = Some(at_ms);
                record.queue = text("queue").or_else(|| text("routing_key")).unwrap_or_default();
                State::Pending
            }
            "task-received" => {
                record.received_at_ms = Some(at_ms);
                State::Received
            }
            "task-started" => {
                record.started_at_ms = Some(at_ms);
                State::Started
            }
            "task-succeeded" => {
                record.runtime_ms = event.get("runtime").and_then(Value::as_f64).map(|s| (s * 1000.0) as u64);
                self.count(&hostname, true);
                State::Success
            }
            "task-failed" => {
                record.error = text("exception");
                self.count(&hostname, false);
                State::Failure
            }
            "task-retried" => {
                record.error = text("exception");
                State::Retry
            }
            "task-revoked" => State::Revoked,
            "task-rejected" => State::Rejected,
            _ => return,
        };
        if let Some(name) = text("name") {
            record.task = name;
        }
        if let (Some(args), kwargs) = (text("args"), text("kwargs")) {
            let shown = match kwargs.filter(|k| k != "{}") {
                Some(kwargs) => format!("{args} {kwargs}"),
                None => args,
            };
            record.args = artel_core::FailedTask::preview(&shown);
        }
        if let Some(retries) = event.get("retries").and_then(Value::as_u64) {
            record.retries = u32::try_from(retries).unwrap_or(u32::MAX);
        }
        record.root_id = text("root_id").or(record.root_id);
        record.parent_id = text("parent_id").or(record.parent_id);
        if !kind.starts_with("task-sent") && !hostname.is_empty() {
            record.worker = hostname;
        }
        // Events may arrive out of order (batches from several workers): a final state is
        // not replaced by an earlier one.
        if record.state.is_ready() && !state.is_ready() {
            return;
        }
        record.state = state;
        record.updated_at_ms = at_ms;
        if let Err(error) = self.history.record(&[record]).await {
            tracing::warn!(%error, "cannot keep a task event");
        }
    }

    fn count(&self, hostname: &str, succeeded: bool) {
        let mut finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        let counts = finished.entry(hostname.to_owned()).or_default();
        if succeeded {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }

    fn worker(&self, kind: &str, hostname: &str, event: &Value) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        if kind == "offline" {
            workers.remove(hostname);
            return;
        }
        let mut stats = serde_json::Map::new();
        for key in ["active", "processed", "freq", "pid", "loadavg", "sw_ident", "sw_ver", "sw_sys"] {
            if let Some(value) = event.get(key) {
                stats.insert(key.to_owned(), value.clone());
            }
        }
        let previous = workers.get(hostname).map(|w| w.stats.clone());
        if let Some(Value::Object(previous)) = previous {
            for (key, value) in previous {
                stats.entry(key).or_insert(value);
            }
        }
        // Seen now: liveness goes by when the heartbeat arrived, as in Celery's state.
        let report = WorkerReport { name: hostname.to_owned(), heartbeat_at_ms: now_ms(), stats: Value::Object(stats) };
        workers.insert(hostname.to_owned(), report);
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The workers seen in events (with what they finished since the monitor started), and
/// those reporting on the broker; stopping one sends Celery's `shutdown` to it.
#[async_trait]
impl WorkerRegistry for EventMonitor {
    async fn report_worker(&self, name: &str, stats: &Value) -> BrokerResult<bool> {
        match &self.reports {
            Some(reports) => reports.report_worker(name, stats).await,
            None => Ok(false),
        }
    }

    async fn request_stop(&self, name: &str) -> BrokerResult<bool> {
        if let Some(reports) = &self.reports
            && reports.request_stop(name).await?
        {
            return Ok(true);
        }
        if !self.workers.lock().unwrap_or_else(|e| e.into_inner()).contains_key(name) {
            return Ok(false);
        }
        let request =
            json!({"method": "shutdown", "arguments": {}, "destination": [name], "pattern": null, "matcher": null});
        self.wire.broadcast(request.to_string().as_bytes()).await?;
        Ok(true)
    }

    async fn worker_gone(&self, name: &str) -> BrokerResult<()> {
        match &self.reports {
            Some(reports) => reports.worker_gone(name).await,
            None => Ok(()),
        }
    }

    async fn workers(&self) -> BrokerResult<Vec<WorkerReport>> {
        let mut listed: BTreeMap<String, WorkerReport> = match &self.reports {
            Some(reports) => reports.workers().await?.into_iter().map(|w| (w.name.clone(), w)).collect(),
            None => BTreeMap::new(),
        };
        let finished = self.finished.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (name, mut report) in self.workers.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            let (succeeded, failed) = finished.get(&name).copied().unwrap_or_default();
            if let Value::Object(stats) = &mut report.stats {
                stats.insert("succeeded".to_owned(), json!(succeeded));
                stats.insert("failed".to_owned(), json!(failed));
            }
            listed.entry(name).or_insert(report);
        }
        Ok(listed.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of an event envelope captured from Celery 5.7 (docs/wire-format.md §e).
    fn sample(name: &str) -> Vec<u8> {
        let path = format!("{}/../artel-core/tests/fixtures/celery/{name}", env!("CARGO_MANIFEST_DIR"));
        let envelope = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        crate::unwrap_envelope(&envelope).unwrap_or_else(|| panic!("{path} is not an envelope"))
    }

    #[derive(Debug)]
    struct NoWire;

    #[async_trait]
    impl Wire for NoWire {
        async fn publish_event(&self, _: &str, _: &[u8], _: &str) -> BrokerResult<()> {
            Ok(())
        }
        async fn events(&self) -> BrokerResult<tokio::sync::mpsc::Receiver<Vec<u8>>> {
            Ok(tokio::sync::mpsc::channel(1).1)
        }
        async fn mailbox(&self, _: &str) -> BrokerResult<crate::Mailbox> {
            Ok(tokio::sync::mpsc::channel(1).1)
        }
        async fn close_mailbox(&self, _: &str) {}
        async fn reply(&self, _: &str, _: &str, _: u64, _: &[u8]) -> BrokerResult<()> {
            Ok(())
        }
        async fn broadcast(&self, _: &[u8]) -> BrokerResult<()> {
            Ok(())
        }
        fn broker_info(&self) -> Value {
            Value::Null
        }
    }

    #[tokio::test]
    async fn captured_celery_events_become_task_records_and_workers() {
        let monitor = EventMonitor::new(Arc::new(NoWire), None);
        for name in ["received", "started", "succeeded"] {
            monitor.fold(&sample(&format!("event-task.multi.task-{name}.envelope.json"))).await;
        }
        monitor.fold(&sample("event-worker.heartbeat.envelope.json")).await;
        monitor.fold(b"not json").await;
        let received: Value =
            serde_json::from_slice(&sample("event-task.multi.task-received.envelope.json")).expect("json");
        let first = if received.is_array() { &received[0] } else { &received };
        let id = first["uuid"].as_str().expect("uuid");
        let record = monitor.history.find(id).await.expect("find").expect("recorded");
        assert_eq!(record.state, State::Success, "{record:?}");
        assert_eq!(record.task, first["name"].as_str().expect("name"));
        assert!(record.received_at_ms.is_some() && record.started_at_ms.is_some() && record.runtime_ms.is_some());
        let workers = monitor.workers().await.expect("workers");
        assert_eq!(workers.len(), 1, "{workers:?}");
        assert!(workers[0].stats["freq"].is_number());
        monitor.fold(&sample("event-worker.offline.envelope.json")).await;
        assert!(monitor.workers().await.expect("workers").is_empty(), "offline removes it");
    }
}
