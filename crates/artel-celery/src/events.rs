//! Publishing a worker's events where Celery's monitors listen (docs/wire-format.md §e), over the
//! broker's [`Wire`]: worker-online, a heartbeat every 2 s, worker-offline (as a Celery
//! worker sends them unless started `--without-heartbeat`), and the task events the worker
//! emits while they are on (`-E`, or `celery control enable_events` until
//! `disable_events`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use artel_core::worker::{Component, ComponentError, Scope, WorkerStats};
use artel_core::{EventSink, TaskError, TaskEvent};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::wire::Wire;

/// Seconds between heartbeats (Celery's default `freq`).
const HEARTBEAT: f64 = 2.0;

/// A worker's event stream on Celery's Redis layout; emitting never blocks.
#[derive(Debug)]
pub struct EventPublisher {
    hostname: String,
    clock: AtomicU64,
    queue: mpsc::UnboundedSender<(String, Vec<u8>)>,
    task_events: AtomicBool,
}

/// Which of a worker's events are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsOn {
    /// Task events from the start (Celery's `-E`); remote control turns them on and off.
    pub tasks: bool,
    /// worker-online, a heartbeat every 2 s and worker-offline (off with Celery's
    /// `--without-heartbeat`).
    pub heartbeats: bool,
}

impl EventPublisher {
    /// A publisher for node `hostname` (give it to the worker as its event sink) and the
    /// loop that sends what it emits (run it once the worker's stats exist).
    pub fn new(wire: Arc<dyn Wire>, hostname: String, on: EventsOn) -> (Arc<Self>, EventLoop) {
        let (queue, outbox) = mpsc::unbounded_channel();
        let task_events = AtomicBool::new(on.tasks);
        let publisher = Arc::new(Self { hostname, clock: AtomicU64::new(0), queue, task_events });
        let outbox = tokio::sync::Mutex::new(outbox);
        let events = EventLoop { wire, publisher: publisher.clone(), outbox, heartbeats: on.heartbeats };
        (publisher, events)
    }

    /// The node name events are sent as.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Turns task events on or off (`enable_events`, `disable_events`); whether they were
    /// on before.
    pub fn set_task_events(&self, on: bool) -> bool {
        self.task_events.swap(on, Ordering::Relaxed)
    }

    /// A worker heartbeat with the current counts (also the answer to the `heartbeat`
    /// control command).
    pub fn heartbeat(&self, stats: &WorkerStats) {
        self.publish("worker-heartbeat", worker_fields(stats));
    }

    /// Sends event `kind` with `fields` and what every Celery event carries.
    fn publish(&self, kind: &'static str, fields: Map<String, Value>) {
        let clock = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        // The publisher task only stops after the worker does; a send error means it
        // already has, and the event has nobody to go to.
        let _ = self.queue.send(event(kind, fields, &self.hostname, clock));
    }
}

/// Event `kind` from node `hostname` at logical time `clock`: its routing key
/// (`task.sent`...) and body, `fields` with what every Celery event carries.
pub(crate) fn event(kind: &str, mut fields: Map<String, Value>, hostname: &str, clock: u64) -> (String, Vec<u8>) {
    fields.insert("type".to_owned(), json!(kind));
    fields.insert("hostname".to_owned(), json!(hostname));
    fields.insert("timestamp".to_owned(), json!(artel_core::time::unix_seconds()));
    fields.insert("utcoffset".to_owned(), json!(0));
    fields.insert("pid".to_owned(), json!(std::process::id()));
    fields.insert("clock".to_owned(), json!(clock));
    (kind.replace('-', "."), serde_json::to_vec(&fields).unwrap_or_default())
}

impl EventSink for EventPublisher {
    fn emit(&self, event: TaskEvent) {
        if !self.listening() {
            return;
        }
        // A message the worker will not run failed too: Celery's monitors count failures
        // from task-failed alone (Celery sends it for an unregistered task as well).
        if let TaskEvent::Rejected { id, error, .. } = &event {
            self.publish("task-failed", exception_fields(id.clone(), error));
        }
        let (kind, fields) = celery_event(event);
        self.publish(kind, fields);
    }

    fn listening(&self) -> bool {
        self.task_events.load(Ordering::Relaxed)
    }
}

/// A task event as Celery's type and fields (docs/wire-format.md §e.4).
fn celery_event(event: TaskEvent) -> (&'static str, Map<String, Value>) {
    let (kind, fields) = match event {
        TaskEvent::Received { id, name, args, kwargs, root_id, parent_id, retries, eta, expires, .. } => (
            "task-received",
            json!({
                "uuid": id, "name": name, "args": args, "kwargs": kwargs, "root_id": root_id,
                "parent_id": parent_id, "retries": retries,
                "eta": eta.as_ref().map(artel_core::time::to_iso),
                "expires": expires.as_ref().map(artel_core::time::to_iso),
            }),
        ),
        TaskEvent::Started { id } => ("task-started", json!({"uuid": id})),
        TaskEvent::Succeeded { id, result, runtime } => {
            ("task-succeeded", json!({"uuid": id, "result": result.to_string(), "runtime": runtime.as_secs_f64()}))
        }
        TaskEvent::Failed { id, error } => ("task-failed", Value::Object(exception_fields(id, &error))),
        TaskEvent::Retried { id, error } => ("task-retried", Value::Object(exception_fields(id, &error))),
        TaskEvent::Revoked { id, terminated, expired } => {
            ("task-revoked", json!({"uuid": id, "terminated": terminated, "signum": null, "expired": expired}))
        }
        TaskEvent::Rejected { id, .. } => ("task-rejected", json!({"uuid": id, "requeue": false})),
    };
    match fields {
        Value::Object(fields) => (kind, fields),
        _ => (kind, Map::new()),
    }
}

/// `uuid`, `exception` as Python's repr (`ValueError('boom')`) and `traceback`.
fn exception_fields(id: String, error: &TaskError) -> Map<String, Value> {
    let exception = format!("{}({:?})", error.exc_type(), error.message());
    let traceback = error.traceback().unwrap_or_default();
    Map::from_iter([
        ("uuid".to_owned(), json!(id)),
        ("exception".to_owned(), json!(exception)),
        ("traceback".to_owned(), json!(traceback)),
    ])
}

fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| text.split_whitespace().take(3).filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![0.0, 0.0, 0.0])
}

fn worker_fields(stats: &WorkerStats) -> Map<String, Value> {
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let processed = load(&stats.succeeded) + load(&stats.failed);
    let fields = json!({
        "freq": HEARTBEAT, "active": load(&stats.active), "processed": processed, "loadavg": loadavg(),
        "sw_ident": "artel", "sw_ver": env!("CARGO_PKG_VERSION"), "sw_sys": std::env::consts::OS,
    });
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The worker component that sends a publisher's events: worker-online, then the
/// emitted events and a heartbeat with the worker's counts every two seconds, and
/// worker-offline at shutdown (the worker events only with `heartbeats`).
#[derive(Debug)]
pub struct EventLoop {
    wire: Arc<dyn Wire>,
    publisher: Arc<EventPublisher>,
    outbox: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>,
    heartbeats: bool,
}

#[async_trait::async_trait]
impl Component for EventLoop {
    fn name(&self) -> &'static str {
        "event publisher"
    }

    async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
        let mut outbox = self.outbox.lock().await;
        let stats = self.heartbeats.then_some(scope.stats.as_ref());
        run(&self.wire, &self.publisher, &mut outbox, stats, &scope.shutdown).await;
        Ok(())
    }
}

async fn run(
    wire: &Arc<dyn Wire>,
    publisher: &EventPublisher,
    outbox: &mut mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    heartbeats: Option<&WorkerStats>,
    stop: &CancellationToken,
) {
    if let Some(stats) = heartbeats {
        publisher.publish("worker-online", worker_fields(stats));
    }
    let mut beat = tokio::time::interval(Duration::from_secs_f64(HEARTBEAT));
    let send = |routing_key: String, body: Vec<u8>| {
        let (wire, hostname) = (wire.clone(), publisher.hostname.clone());
        async move {
            if let Err(e) = wire.publish_event(&routing_key, &body, &hostname).await {
                tracing::warn!(error = %e, "could not publish an event");
            }
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = beat.tick(), if heartbeats.is_some() => {
                if let Some(stats) = heartbeats {
                    publisher.heartbeat(stats);
                }
            }
            Some((routing_key, body)) = outbox.recv() => send(routing_key, body).await,
        }
    }
    if let Some(stats) = heartbeats {
        publisher.publish("worker-offline", worker_fields(stats));
    }
    while let Ok((routing_key, body)) = outbox.try_recv() {
        send(routing_key, body).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_core::TaskErrorKind;

    fn fields(event: TaskEvent) -> (&'static str, Value) {
        let (kind, fields) = celery_event(event);
        (kind, Value::Object(fields))
    }

    #[test]
    fn task_events_read_as_celery_writes_them() {
        let runtime = Duration::from_millis(1500);
        let succeeded = fields(TaskEvent::Succeeded { id: "t1".into(), result: json!({"a": 1}), runtime });
        assert_eq!(succeeded, ("task-succeeded", json!({"uuid": "t1", "result": "{\"a\":1}", "runtime": 1.5})));
        let error = TaskError::new(TaskErrorKind::Failed, "ValueError", "boom").with_traceback("at line 1");
        let failed = fields(TaskEvent::Failed { id: "t2".into(), error });
        let expected = json!({"uuid": "t2", "exception": "ValueError(\"boom\")", "traceback": "at line 1"});
        assert_eq!(failed, ("task-failed", expected));
        let revoked = fields(TaskEvent::Revoked { id: "t3".into(), terminated: false, expired: true });
        let expected = json!({"uuid": "t3", "terminated": false, "signum": null, "expired": true});
        assert_eq!(revoked, ("task-revoked", expected));
        let received = fields(TaskEvent::Received {
            id: "t4".into(),
            name: "add".into(),
            args: Some("(2, 3)".into()),
            kwargs: None,
            root_id: Some("t4".into()),
            parent_id: None,
            retries: 1,
            eta: None,
            expires: None,
            queue: "celery".into(),
            sent_at_ms: None,
            trace: artel_core::TraceContext::root(),
            parent_span_id: None,
        });
        let expected = json!({
            "uuid": "t4", "name": "add", "args": "(2, 3)", "kwargs": null, "root_id": "t4",
            "parent_id": null, "retries": 1, "eta": null, "expires": null,
        });
        assert_eq!(received, ("task-received", expected));
    }
}
