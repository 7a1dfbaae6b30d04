//! [`Responder`]: a worker's answers to remote-control requests, in the shapes a Python
//! Celery 5 worker gives (celery/worker/control.py), so `celery inspect`, Flower and
//! `artel inspect` read them alike.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use super::ControlRequest;
use crate::broker::HeldTask;
use crate::worker::{Stop, TuneError, WorkerControl, WorkerStats};

/// The worker's events as remote control switches them: `enable_events`,
/// `disable_events` and `heartbeat` requests.
pub trait RemoteEvents: Send + Sync + fmt::Debug {
    /// Turns task events on or off; whether they were on before.
    fn set_task_events(&self, on: bool) -> bool;
    /// Sends a worker heartbeat now.
    fn heartbeat(&self, stats: &WorkerStats);
}

/// Answers the requests addressed to one worker.
#[derive(Debug)]
pub struct Responder {
    nodename: String,
    control: Arc<dyn WorkerControl>,
    stop: Stop,
    broker: Value,
    events: Option<Arc<dyn RemoteEvents>>,
    started: Instant,
    clock: AtomicU64,
}

impl Responder {
    /// Answers for worker `nodename`, seen through `control`; a `shutdown` request fires
    /// `stop.warm`. `broker` describes the broker as kombu does (`hostname`, `port`,
    /// `transport`, `virtual_host`), without credentials; `events` is what
    /// `enable_events` switches, where the broker carries events.
    pub fn new(
        nodename: String,
        control: Arc<dyn WorkerControl>,
        stop: Stop,
        broker: Value,
        events: Option<Arc<dyn RemoteEvents>>,
    ) -> Self {
        Self { nodename, control, stop, broker, events, started: Instant::now(), clock: AtomicU64::new(0) }
    }

    /// The worker's node name.
    pub fn nodename(&self) -> &str {
        &self.nodename
    }

    /// The reply body (`{nodename: reply}`) to `request` and the logical clock it is sent
    /// at; `None` when the request is for other workers or expects no reply.
    pub fn respond(&self, request: &ControlRequest) -> Option<(u64, Vec<u8>)> {
        if !request.is_for(&self.nodename) {
            return None;
        }
        let clock = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        let reply = self.answer(request, clock)?;
        Some((clock, json!({ &self.nodename: reply }).to_string().into_bytes()))
    }

    /// The reply to `request`, or `None` for casts that expect none.
    fn answer(&self, request: &ControlRequest, clock: u64) -> Option<Value> {
        let control = &self.control;
        Some(match request.method.as_str() {
            "ping" => json!({"ok": "pong"}),
            "stats" => self.stats(clock),
            "active" => Value::Array(control.active().iter().map(|a| self.request(&a.task, Some(a.started))).collect()),
            "reserved" => Value::Array(control.reserved().iter().map(|task| self.request(task, None)).collect()),
            "scheduled" => Value::Array(control.scheduled().iter().map(|task| self.scheduled(task)).collect()),
            "revoked" => json!(control.revoked()),
            "registered" => json!(control.registered()),
            "active_queues" => Value::Array(control.queues().iter().map(|q| queue_info(q)).collect()),
            // Celery's replies, whether or not the queue was consumed already.
            "add_consumer" => match request.text("queue") {
                Some(queue) => {
                    control.add_queue(&queue);
                    json!({"ok": format!("add consumer {queue}")})
                }
                None => json!({"error": "add_consumer needs a queue"}),
            },
            "cancel_consumer" => match request.text("queue") {
                Some(queue) => {
                    control.cancel_queue(&queue);
                    json!({"ok": format!("no longer consuming from {queue}")})
                }
                None => json!({"error": "cancel_consumer needs a queue"}),
            },
            "conf" => self.conf(),
            "clock" => json!({"clock": clock}),
            "report" => json!({"ok": format!("artel {} worker {}", env!("CARGO_PKG_VERSION"), self.nodename)}),
            "query_task" => self.query(&request.task_ids_in("ids")),
            "hello" if request.arguments.get("from_node").and_then(Value::as_str) == Some(self.nodename.as_str()) => {
                Value::Null
            }
            "hello" => json!({"revoked": control.revoked(), "clock": clock}),
            "enable_events" | "disable_events" | "heartbeat" => return self.switch_events(request.method()),
            "revoke" | "terminate" => {
                let ids = request.task_ids();
                let terminate = request.method == "terminate"
                    || request.arguments.get("terminate").and_then(Value::as_bool) == Some(true);
                control.revoke(&ids, terminate);
                json!({"ok": format!("tasks {} flagged as revoked", ids.join(", "))})
            }
            "rate_limit" => self.rate_limit(request),
            "time_limit" => {
                let secs = |key: &str| request.arguments.get(key).and_then(Value::as_f64);
                let task = request.text("task_name").unwrap_or_default();
                match control.set_time_limits(&task, secs("soft"), secs("hard")) {
                    Ok(()) => json!({"ok": "time limits set successfully"}),
                    Err(error) => json!({"error": error.to_string()}),
                }
            }
            "pool_grow" | "pool_shrink" => {
                let n = request.arguments.get("n").and_then(Value::as_i64).unwrap_or(1).max(0);
                let (delta, verb) = if request.method == "pool_grow" { (n, "grow") } else { (-n, "shrink") };
                control.resize(delta);
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

    /// `enable_events`, `disable_events` (Celery's replies, word for word) and
    /// `heartbeat` (a cast).
    fn switch_events(&self, method: &str) -> Option<Value> {
        let Some(events) = &self.events else {
            return (method != "heartbeat").then(|| json!({"error": "this broker carries no events"}));
        };
        Some(match method {
            "enable_events" => match events.set_task_events(true) {
                false => json!({"ok": "task events enabled"}),
                true => json!({"ok": "task events already enabled"}),
            },
            "disable_events" => match events.set_task_events(false) {
                true => json!({"ok": "task events disabled"}),
                false => json!({"ok": "task events already disabled"}),
            },
            _ => {
                events.heartbeat(&self.control.stats());
                return None;
            }
        })
    }

    fn rate_limit(&self, request: &ControlRequest) -> Value {
        let (task, rate) = (request.text("task_name"), request.text("rate_limit"));
        // Celery's reply says "disabled" only for a falsy argument (not for "0").
        let falsy = match request.arguments.get("rate_limit") {
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

    fn stats(&self, clock: u64) -> Value {
        let stats = self.control.stats();
        let mut broker = self.broker.clone();
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
        let broker = &self.broker;
        let text = |key: &str| broker[key].as_str().map(str::to_owned).unwrap_or_else(|| broker[key].to_string());
        let (transport, host, vhost) = (text("transport"), text("hostname"), text("virtual_host"));
        let url = match broker["port"].as_u64() {
            Some(0) | None if host.is_empty() => format!("{transport}://{vhost}"),
            Some(0) | None => format!("{transport}://{host}/{vhost}"),
            Some(port) => format!("{transport}://{host}:{port}/{vhost}"),
        };
        conf.insert("broker_url".to_owned(), json!(url));
        Value::Object(conf)
    }

    /// An entry of `inspect scheduled`: when it is due, and the request.
    fn scheduled(&self, task: &HeldTask) -> Value {
        let eta = task.eta.as_ref().map(crate::time::to_iso);
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
