//! Remote control over kombu's pidbox (spec §f): `celery inspect` / `celery control`
//! and Flower reach an artel worker through the `celery.pidbox` fanout channel and get
//! their replies on the client's reply list.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use artel_redis::toolkit::redis_error;
use artel_runtime::{Stop, WorkerControl};
use base64::Engine;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::broker::{CeleryRedis, Shared};
use crate::envelope;
use crate::events::EventPublisher;
use crate::keys::SEP;

/// What a request asks, read from the pidbox message body.
#[derive(Debug, serde::Deserialize)]
struct Request {
    method: String,
    #[serde(default)]
    arguments: serde_json::Map<String, Value>,
    #[serde(default)]
    destination: Option<Vec<String>>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    ticket: Option<String>,
    #[serde(default)]
    reply_to: Option<ReplyTo>,
}

#[derive(Debug, serde::Deserialize)]
struct ReplyTo {
    routing_key: String,
}

/// Serves remote-control requests addressed to `nodename` until `done` fires; a
/// `shutdown` request fires `stop.warm`. Events (for `heartbeat`) go through `events`.
pub async fn serve_remote_control(
    broker: CeleryRedis,
    nodename: String,
    control: WorkerControl,
    events: Option<Arc<EventPublisher>>,
    stop: Stop,
    done: CancellationToken,
) -> artel_core::BrokerResult<()> {
    let shared = broker.shared.clone();
    let mut conn = shared.conn.clone();
    let member = format!("{SEP}{SEP}{nodename}.celery.pidbox");
    redis::cmd("SADD")
        .arg(shared.names.binding("celery.pidbox"))
        .arg(&member)
        .query_async::<i64>(&mut conn)
        .await
        .map_err(|e| redis_error("registering the worker's mailbox", e))?;
    let mut pubsub = shared.client.get_async_pubsub().await.map_err(|e| redis_error("opening the mailbox", e))?;
    pubsub
        .subscribe(shared.names.fanout("celery.pidbox", ""))
        .await
        .map_err(|e| redis_error("subscribing to remote control", e))?;
    let server = Server {
        shared: shared.clone(),
        nodename,
        control,
        events,
        stop,
        started: Instant::now(),
        clock: AtomicU64::new(0),
    };
    let mut messages = pubsub.on_message();
    loop {
        let next = std::future::poll_fn(|cx| futures_core::Stream::poll_next(std::pin::Pin::new(&mut messages), cx));
        let message = tokio::select! {
            _ = done.cancelled() => break,
            message = next => message,
        };
        let Some(message) = message else { break };
        match decode(message.get_payload_bytes()) {
            Ok(request) => server.handle(request).await,
            Err(e) => tracing::warn!(error = %e, "ignoring a malformed remote-control message"),
        }
    }
    let _ =
        redis::cmd("SREM").arg(shared.names.binding("celery.pidbox")).arg(&member).query_async::<i64>(&mut conn).await;
    Ok(())
}

fn decode(payload: &[u8]) -> Result<Request, String> {
    let envelope: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    let body = envelope.get("body").and_then(Value::as_str).ok_or("no body")?;
    let bytes = match envelope.pointer("/properties/body_encoding").and_then(Value::as_str) {
        Some("base64") => base64::engine::general_purpose::STANDARD.decode(body).map_err(|e| e.to_string())?,
        _ => body.as_bytes().to_vec(),
    };
    serde_json::from_slice(&bytes).map_err(|e| format!("body is not a control request: {e}"))
}

struct Server {
    shared: Arc<Shared>,
    nodename: String,
    control: WorkerControl,
    events: Option<Arc<EventPublisher>>,
    stop: Stop,
    started: Instant,
    clock: AtomicU64,
}

impl Server {
    async fn handle(&self, request: Request) {
        let addressed = match (&request.destination, &request.pattern) {
            (Some(nodes), _) => nodes.contains(&self.nodename),
            (None, Some(_)) => false,
            (None, None) => true,
        };
        if !addressed {
            return;
        }
        let clock = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        let reply = self.answer(&request, clock);
        if let (Some(reply), Some(ticket), Some(to)) = (reply, &request.ticket, &request.reply_to) {
            let body = serde_json::to_vec(&json!({ &self.nodename: reply })).unwrap_or_default();
            let headers = json!({"ticket": ticket, "clock": clock});
            let message = envelope(&body, headers, "reply.celery.pidbox", &to.routing_key, 1);
            let mut conn = self.shared.conn.clone();
            let list = self.shared.names.reply_list(&to.routing_key);
            if let Err(e) = redis::cmd("LPUSH").arg(list).arg(message).query_async::<i64>(&mut conn).await {
                tracing::warn!(error = %e, method = %request.method, "could not send a remote-control reply");
            }
        }
    }

    /// The reply to `request`, or `None` for casts that expect none.
    fn answer(&self, request: &Request, clock: u64) -> Option<Value> {
        let args = &request.arguments;
        Some(match request.method.as_str() {
            "ping" => json!({"ok": "pong"}),
            "stats" => self.stats(clock),
            "active" => Value::Array(self.active()),
            "reserved" | "scheduled" => json!([]),
            "revoked" => json!(self.control.revoked()),
            "registered" => json!(self.control.registered()),
            "active_queues" => Value::Array(self.control.queues().iter().map(|q| queue_info(q)).collect()),
            "conf" => json!({}),
            "clock" => json!({"clock": clock}),
            "report" => json!({"ok": format!("artel {} worker {}", env!("CARGO_PKG_VERSION"), self.nodename)}),
            "query_task" => json!({}),
            "hello" if args.get("from_node").and_then(Value::as_str) == Some(self.nodename.as_str()) => Value::Null,
            "hello" => json!({"revoked": self.control.revoked(), "clock": clock}),
            "enable_events" => json!({"ok": "task events enabled"}),
            "disable_events" => json!({"ok": "task events disabled"}),
            "heartbeat" => {
                if let Some(events) = &self.events {
                    events.heartbeat(&self.control.stats());
                }
                return None;
            }
            "revoke" | "terminate" => {
                let ids = match args.get("task_id") {
                    Some(Value::String(id)) => vec![id.clone()],
                    Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                    _ => Vec::new(),
                };
                let terminate =
                    request.method == "terminate" || args.get("terminate").and_then(Value::as_bool) == Some(true);
                self.control.revoke(&ids, terminate);
                json!({"ok": format!("tasks {} flagged as revoked", ids.join(", "))})
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
        let total: serde_json::Map<String, Value> =
            stats.timings().into_iter().map(|(name, timing)| (name, json!(timing.count))).collect();
        let info = self.shared.client.get_connection_info();
        let (host, port) = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) | redis::ConnectionAddr::TcpTls { host, port, .. } => {
                (host.clone(), *port)
            }
            _ => (String::new(), 0),
        };
        json!({
            "total": total,
            "pid": std::process::id(),
            "clock": clock.to_string(),
            "uptime": self.started.elapsed().as_secs(),
            "pool": {
                "implementation": "artel", "max-concurrency": self.control.concurrency(),
                "processes": [std::process::id()], "max-tasks-per-child": "N/A",
                "put-guarded-by-semaphore": false, "timeouts": [0, 0],
            },
            "broker": {
                "hostname": host, "port": port, "transport": "redis",
                "virtual_host": self.shared.names.db.to_string(), "userid": null, "insist": false, "ssl": false,
                "login_method": null, "connect_timeout": 4, "heartbeat": 120.0, "alternates": [],
                "uri_prefix": null, "failover_strategy": "round-robin", "transport_options": {},
            },
            "prefetch_count": self.control.prefetch(),
            "rusage": "N/A",
        })
    }

    fn active(&self) -> Vec<Value> {
        self.control
            .active()
            .into_iter()
            .map(|task| {
                json!({
                    "id": task.id, "name": task.name, "args": task.args, "kwargs": task.kwargs,
                    "type": task.name, "hostname": self.nodename, "time_start": task.started,
                    "acknowledged": false, "worker_pid": std::process::id(),
                    "delivery_info": {
                        "exchange": "", "routing_key": task.routing_key, "priority": task.priority,
                        "redelivered": false,
                    },
                })
            })
            .collect()
    }
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
