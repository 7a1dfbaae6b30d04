//! Remote control over kombu's pidbox (docs/wire-format.md §f): `celery inspect` / `celery control`
//! and Flower reach an artel worker through the `celery.pidbox` fanout and get their
//! replies through the client's reply queue, over whichever [`Wire`] the broker has.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use artel_core::HeldTask;
use artel_core::worker::{Component, ComponentError, Scope, Stop, TuneError, WorkerControl};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::address::Address;
use crate::events::EventPublisher;
use crate::wire::Wire;

/// What a remote-control request asks, read from a pidbox message body.
#[derive(Debug, serde::Deserialize)]
pub struct ControlRequest {
    method: String,
    #[serde(default)]
    arguments: serde_json::Map<String, Value>,
    #[serde(flatten)]
    address: Address,
    #[serde(default)]
    ticket: Option<String>,
    #[serde(default)]
    reply_to: Option<ReplyTo>,
}

#[derive(Debug, serde::Deserialize)]
struct ReplyTo {
    routing_key: String,
}

impl ControlRequest {
    /// The request in a pidbox message body, or why it is not one.
    pub fn decode(body: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The method asked for (`ping`, `revoke`, ...).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Whether a worker named `nodename` is to answer (`destination`, or `pattern` with
    /// its `matcher`, as kombu decides).
    pub fn is_for(&self, nodename: &str) -> bool {
        self.address.includes(nodename)
    }

    /// The task ids a `revoke` or `terminate` names: one id or a list (non-strings skipped).
    pub fn task_ids(&self) -> Vec<String> {
        self.task_ids_in("task_id")
    }

    /// The task ids in argument `key`: one id or a list (non-strings skipped).
    fn task_ids_in(&self, key: &str) -> Vec<String> {
        match self.arguments.get(key) {
            Some(Value::String(id)) => vec![id.clone()],
            Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    }
}

/// The worker component that answers `celery inspect` / `celery control` and Flower.
#[derive(Debug)]
pub struct RemoteControl {
    /// Where the pidbox requests arrive and replies go.
    pub wire: Arc<dyn Wire>,
    /// The worker's events: a `heartbeat` request sends one, `enable_events` and
    /// `disable_events` turn its task events on and off.
    pub events: Arc<EventPublisher>,
}

#[async_trait::async_trait]
impl Component for RemoteControl {
    fn name(&self) -> &'static str {
        "remote control"
    }

    async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
        let serving = serve_remote_control(
            self.wire.clone(),
            scope.name.clone(),
            scope.control.clone(),
            self.events.clone(),
            scope.stop.clone(),
            scope.shutdown.clone(),
        );
        serving.await.map_err(|e| ComponentError::Failed(e.to_string()))
    }
}

/// Serves remote-control requests addressed to `nodename` until `done` fires; a
/// `shutdown` request fires `stop.warm`. Events (`heartbeat`, `enable_events`) go
/// through `events`.
async fn serve_remote_control(
    wire: Arc<dyn Wire>,
    nodename: String,
    control: Arc<dyn WorkerControl>,
    events: Arc<EventPublisher>,
    stop: Stop,
    done: CancellationToken,
) -> artel_core::BrokerResult<()> {
    let mut mailbox = wire.mailbox(&nodename).await?;
    let server = Server {
        wire: wire.clone(),
        nodename,
        control,
        events,
        stop,
        started: Instant::now(),
        clock: AtomicU64::new(0),
    };
    loop {
        let body = tokio::select! {
            _ = done.cancelled() => break,
            body = mailbox.recv() => body,
        };
        let Some(body) = body else { break };
        match ControlRequest::decode(&body) {
            Ok(request) => server.handle(request).await,
            Err(e) => tracing::warn!(error = %e, "ignoring a malformed remote-control request"),
        }
    }
    wire.close_mailbox(&server.nodename).await;
    Ok(())
}

struct Server {
    wire: Arc<dyn Wire>,
    nodename: String,
    control: Arc<dyn WorkerControl>,
    events: Arc<EventPublisher>,
    stop: Stop,
    started: Instant,
    clock: AtomicU64,
}

impl Server {
    async fn handle(&self, request: ControlRequest) {
        if !request.is_for(&self.nodename) {
            return;
        }
        let clock = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        let reply = self.answer(&request, clock);
        if let (Some(reply), Some(ticket), Some(to)) = (reply, &request.ticket, &request.reply_to) {
            let body = serde_json::to_vec(&json!({ &self.nodename: reply })).unwrap_or_default();
            if let Err(e) = self.wire.reply(&to.routing_key, ticket, clock, &body).await {
                tracing::warn!(error = %e, method = %request.method, "could not send a remote-control reply");
            }
        }
    }

    /// The reply to `request`, or `None` for casts that expect none.
    fn answer(&self, request: &ControlRequest, clock: u64) -> Option<Value> {
        let args = &request.arguments;
        Some(match request.method.as_str() {
            "ping" => json!({"ok": "pong"}),
            "stats" => self.stats(clock),
            "active" => {
                Value::Array(self.control.active().iter().map(|a| self.request(&a.task, Some(a.started))).collect())
            }
            "reserved" => Value::Array(self.control.reserved().iter().map(|task| self.request(task, None)).collect()),
            "scheduled" => Value::Array(self.control.scheduled().iter().map(|task| self.scheduled(task)).collect()),
            "revoked" => json!(self.control.revoked()),
            "registered" => json!(self.control.registered()),
            "active_queues" => Value::Array(self.control.queues().iter().map(|q| queue_info(q)).collect()),
            // Celery's replies, whether or not the queue was consumed already.
            "add_consumer" => match text(args, "queue") {
                Some(queue) => {
                    self.control.add_queue(&queue);
                    json!({"ok": format!("add consumer {queue}")})
                }
                None => json!({"error": "add_consumer needs a queue"}),
            },
            "cancel_consumer" => match text(args, "queue") {
                Some(queue) => {
                    self.control.cancel_queue(&queue);
                    json!({"ok": format!("no longer consuming from {queue}")})
                }
                None => json!({"error": "cancel_consumer needs a queue"}),
            },
            "conf" => self.conf(),
            "clock" => json!({"clock": clock}),
            "report" => json!({"ok": format!("artel {} worker {}", env!("CARGO_PKG_VERSION"), self.nodename)}),
            "query_task" => self.query(&request.task_ids_in("ids")),
            "hello" if args.get("from_node").and_then(Value::as_str) == Some(self.nodename.as_str()) => Value::Null,
            "hello" => json!({"revoked": self.control.revoked(), "clock": clock}),
            // Celery's replies, word for word.
            "enable_events" => match self.events.set_task_events(true) {
                false => json!({"ok": "task events enabled"}),
                true => json!({"ok": "task events already enabled"}),
            },
            "disable_events" => match self.events.set_task_events(false) {
                true => json!({"ok": "task events disabled"}),
                false => json!({"ok": "task events already disabled"}),
            },
            "heartbeat" => {
                self.events.heartbeat(&self.control.stats());
                return None;
            }
            "revoke" | "terminate" => {
                let ids = request.task_ids();
                let terminate =
                    request.method == "terminate" || args.get("terminate").and_then(Value::as_bool) == Some(true);
                self.control.revoke(&ids, terminate);
                json!({"ok": format!("tasks {} flagged as revoked", ids.join(", "))})
            }
            "rate_limit" => {
                let (task, rate) = (text(args, "task_name"), text(args, "rate_limit"));
                // Celery's reply says "disabled" only for a falsy argument (not for "0").
                let falsy = match args.get("rate_limit") {
                    None | Some(Value::Null) => true,
                    Some(Value::String(rate)) => rate.is_empty(),
                    Some(Value::Number(rate)) => rate.as_f64() == Some(0.0),
                    Some(_) => false,
                };
                match self.control.set_rate_limit(&task.unwrap_or_default(), rate.as_deref()) {
                    Ok(()) if falsy => json!({"ok": "rate limit disabled successfully"}),
                    Ok(()) => json!({"ok": "new rate limit set successfully"}),
                    Err(TuneError::Invalid(error)) => json!({"error": format!("Invalid rate limit string: {error}")}),
                    Err(error) => json!({"error": error.to_string()}),
                }
            }
            "time_limit" => {
                let secs = |key: &str| args.get(key).and_then(Value::as_f64);
                let task = text(args, "task_name").unwrap_or_default();
                match self.control.set_time_limits(&task, secs("soft"), secs("hard")) {
                    Ok(()) => json!({"ok": "time limits set successfully"}),
                    Err(error) => json!({"error": error.to_string()}),
                }
            }
            "pool_grow" | "pool_shrink" => {
                let n = args.get("n").and_then(Value::as_i64).unwrap_or(1).max(0);
                let (delta, verb) = if request.method == "pool_grow" { (n, "grow") } else { (-n, "shrink") };
                self.control.resize(delta);
                json!({"ok": format!("pool will {verb}")})
            }
            "shutdown" => {
                tracing::warn!("shutdown requested by remote control");
                self.stop.warm.cancel();
                return None;
            }
            other => json!({"error": format!("No such control command: {other}")}),
        })
    }

    fn stats(&self, clock: u64) -> Value {
        let stats = self.control.stats();
        let mut broker = self.wire.broker_info();
        if let (Value::Object(fields), Value::Object(defaults)) = (&mut broker, broker_defaults()) {
            for (key, value) in defaults {
                fields.entry(key).or_insert(value);
            }
        }
        let total: serde_json::Map<String, Value> =
            stats.timings().into_iter().map(|(name, timing)| (name, json!(timing.count))).collect();
        // Celery's prefork pool lists its children; a worker without them lists itself.
        let pool = match self.control.processes() {
            Some(children) => json!({
                "implementation": "artel:processes", "max-concurrency": children.size,
                "processes": children.pids,
                "max-tasks-per-child": children.max_tasks_per_child.map_or(json!("N/A"), |n| json!(n)),
                "put-guarded-by-semaphore": true, "timeouts": [0, 0],
            }),
            None => json!({
                "implementation": "artel", "max-concurrency": self.control.concurrency(),
                "processes": [std::process::id()], "max-tasks-per-child": "N/A",
                "put-guarded-by-semaphore": false, "timeouts": [0, 0],
            }),
        };
        json!({
            "total": total,
            "pid": std::process::id(),
            "clock": clock.to_string(),
            "uptime": self.started.elapsed().as_secs(),
            "pool": pool,
            "broker": broker,
            "prefetch_count": self.control.prefetch(),
            "rusage": "N/A",
        })
    }

    /// `inspect conf`: the worker's settings and, without credentials, where its broker is.
    fn conf(&self) -> Value {
        let mut conf = self.control.conf();
        let broker = self.wire.broker_info();
        let text = |key: &str| broker[key].as_str().map(str::to_owned).unwrap_or_else(|| broker[key].to_string());
        let url = format!("{}://{}:{}/{}", text("transport"), text("hostname"), text("port"), text("virtual_host"));
        conf.insert("broker_url".to_owned(), json!(url));
        Value::Object(conf)
    }

    /// An entry of `inspect scheduled`: when it is due, and the request.
    fn scheduled(&self, task: &HeldTask) -> Value {
        let eta = task.eta.as_ref().map(artel_core::time::to_iso);
        json!({"eta": eta, "priority": task.priority, "request": self.request(task, None)})
    }

    /// Celery's `Request.info()` of `task`, running since `started` or not started.
    fn request(&self, task: &HeldTask, started: Option<f64>) -> Value {
        json!({
            "id": task.id, "name": task.name, "args": task.args, "kwargs": task.kwargs, "type": task.name,
            "hostname": self.nodename, "time_start": started, "acknowledged": false,
            "worker_pid": started.map(|_| std::process::id()),
            "delivery_info": {
                "exchange": "", "routing_key": task.routing_key, "priority": task.priority, "redelivered": false,
            },
        })
    }

    /// `query_task`: each of `ids` this worker runs or holds ready, as Celery answers
    /// (`{id: ["active" | "reserved", info]}`; ETA tasks are not listed until due).
    fn query(&self, ids: &[String]) -> Value {
        let wanted = |id: &str| ids.iter().any(|wanted| wanted == id);
        let mut found = serde_json::Map::new();
        for task in self.control.reserved().iter().filter(|task| wanted(&task.id)) {
            found.insert(task.id.clone(), json!(["reserved", self.request(task, None)]));
        }
        for active in self.control.active().iter().filter(|active| wanted(&active.task.id)) {
            found.insert(active.task.id.clone(), json!(["active", self.request(&active.task, Some(active.started))]));
        }
        Value::Object(found)
    }
}

/// Argument `key` as text: a string, or a number as written (`rate_limit 10`).
fn text(args: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match args.get(key)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The connection fields kombu reports besides where the broker is.
fn broker_defaults() -> Value {
    json!({
        "userid": null, "insist": false, "ssl": false, "login_method": null, "connect_timeout": 4,
        "heartbeat": 120.0, "alternates": [], "uri_prefix": null, "failover_strategy": "round-robin",
        "transport_options": {},
    })
}

/// A consumed queue as kombu describes it (`inspect active_queues`).
fn queue_info(queue: &str) -> Value {
    json!({
        "name": queue, "routing_key": queue, "durable": true, "exclusive": false, "auto_delete": false,
        "no_ack": false, "alias": null, "bindings": [], "no_declare": null, "expires": null,
        "message_ttl": null, "max_length": null, "max_length_bytes": null, "max_priority": null,
        "queue_arguments": null, "binding_arguments": null, "consumer_arguments": null,
        "exchange": {
            "name": queue, "type": "direct", "arguments": null, "durable": true, "passive": false,
            "auto_delete": false, "delivery_mode": null, "no_declare": false,
        },
    })
}
