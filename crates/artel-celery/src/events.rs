//! Publishing a worker's events where Celery's monitors listen (docs/wire-format.md §e), over the
//! broker's [`Wire`]: worker-online, a heartbeat every 2 s, worker-offline, and the task
//! events the worker emits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use artel_runtime::{Component, ComponentError, EventSink, Scope, WorkerStats};
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
}

impl EventPublisher {
    /// A publisher for node `hostname` (give it to the worker as its event sink) and the
    /// loop that sends what it emits (run it once the worker's stats exist).
    pub fn new(wire: Arc<dyn Wire>, hostname: String) -> (Arc<Self>, EventLoop) {
        let (queue, outbox) = mpsc::unbounded_channel();
        let publisher = Arc::new(Self { hostname, clock: AtomicU64::new(0), queue });
        let events = EventLoop { wire, publisher: publisher.clone(), outbox: tokio::sync::Mutex::new(outbox) };
        (publisher, events)
    }

    /// The node name events are sent as.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// A worker heartbeat with the current counts (also the answer to the `heartbeat`
    /// control command).
    pub fn heartbeat(&self, stats: &WorkerStats) {
        self.emit("worker-heartbeat", worker_fields(stats));
    }
}

impl EventSink for EventPublisher {
    fn emit(&self, kind: &'static str, mut fields: Map<String, Value>) {
        let clock = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        fields.insert("type".to_owned(), json!(kind));
        fields.insert("hostname".to_owned(), json!(self.hostname));
        fields.insert("timestamp".to_owned(), json!(artel_core::time::unix_seconds()));
        fields.insert("utcoffset".to_owned(), json!(0));
        fields.insert("pid".to_owned(), json!(std::process::id()));
        fields.insert("clock".to_owned(), json!(clock));
        let routing_key = kind.replace('-', ".");
        let body = serde_json::to_vec(&fields).unwrap_or_default();
        // The publisher task only stops after the worker does; a send error means it
        // already has, and the event has nobody to go to.
        let _ = self.queue.send((routing_key, body));
    }
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
/// worker-offline at shutdown.
#[derive(Debug)]
pub struct EventLoop {
    wire: Arc<dyn Wire>,
    publisher: Arc<EventPublisher>,
    outbox: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>,
}

#[async_trait::async_trait]
impl Component for EventLoop {
    fn name(&self) -> &'static str {
        "event publisher"
    }

    async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
        let mut outbox = self.outbox.lock().await;
        run(&self.wire, &self.publisher, &mut outbox, &scope.stats, &scope.shutdown).await;
        Ok(())
    }
}

async fn run(
    wire: &Arc<dyn Wire>,
    publisher: &EventPublisher,
    outbox: &mut mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    stats: &WorkerStats,
    stop: &CancellationToken,
) {
    publisher.emit("worker-online", worker_fields(stats));
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
            _ = beat.tick() => publisher.heartbeat(stats),
            Some((routing_key, body)) = outbox.recv() => send(routing_key, body).await,
        }
    }
    publisher.emit("worker-offline", worker_fields(stats));
    while let Ok((routing_key, body)) = outbox.try_recv() {
        send(routing_key, body).await;
    }
}
