//! Signatures: a task name, its (partial) arguments and the options to send it with.
//!
//! Serialized exactly like Celery's signature dict, so signatures nest inside messages
//! (`link`, `chain`, `chord`) and cross between Python and Rust unchanged.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::time::{Timestamp, iso_opt, parse_iso, seconds_opt, to_iso};

/// The queue tasks go to when nothing says otherwise (Celery's default, for interop).
pub const DEFAULT_QUEUE: &str = "celery";

/// A task call that has not been sent yet.
///
/// ```
/// use std::time::Duration;
/// use artel_core::Signature;
/// use serde_json::json;
///
/// let call = Signature::new("reports.build")
///     .with_args(vec![json!(42)])
///     .kwarg("day", "2026-12-01")
///     .queue("reports")
///     .priority(9)
///     .countdown(Duration::from_secs(30))
///     .expires_in(Duration::from_secs(3600))
///     .time_limit(Duration::from_secs(60))
///     .group_key("tenant-42");
/// assert_eq!(call.options.queue.as_deref(), Some("reports"));
/// // Celery's dict form, as Python's `signature(...)` reads it.
/// let dict = serde_json::to_value(&call)?;
/// assert_eq!(dict["task"], "reports.build");
/// assert_eq!(dict["kwargs"]["day"], "2026-12-01");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signature {
    /// Registered task name.
    pub task: String,
    /// Positional arguments.
    #[serde(default)]
    pub args: Vec<Value>,
    /// Keyword arguments.
    #[serde(default)]
    pub kwargs: Map<String, Value>,
    /// How to send it.
    #[serde(default)]
    pub options: TaskOptions,
    /// `group`, `chain`, `chord` for composites; none for a plain task.
    #[serde(default)]
    pub subtask_type: Option<String>,
    /// When true a parent's result is not prepended to `args` (Celery `.si()`).
    #[serde(default)]
    pub immutable: bool,
    /// Fields from other Celery versions (e.g. `chord_size`), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// When a task stops being worth running.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Expires {
    /// This long after it is sent.
    In(Duration),
    /// At this time.
    At(Timestamp),
}

/// How long a call sent with a [`Signature::unique_key`] but no
/// [`Signature::unique_for`] stays unique at most.
pub const UNIQUE_FOR: Duration = Duration::from_secs(3600);

/// `apply_async` options. Unset fields fall back to the task's declared defaults, then the app's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskOptions {
    /// Pre-assigned task id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// Queue to publish to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// 0-9; higher runs first on artel's native brokers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Run no earlier than this long after sending.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "seconds_opt")]
    pub countdown: Option<Duration>,
    /// Run no earlier than this time.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "iso_opt")]
    pub eta: Option<Timestamp>,
    /// Discard (as REVOKED) when not started by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Expires>,
    /// How many times a failing task may be retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Retry any failure automatically (within `max_retries`), not only explicit retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoretry: Option<bool>,
    /// Wait before the first automatic retry; doubles each time, full jitter, 10 min cap.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "seconds_opt")]
    pub retry_backoff: Option<Duration>,
    /// Deliveries without an outcome (each worker died running it) after which the
    /// message is dead-lettered as `WorkerLostError` instead of run again; the worker's
    /// `--max-deliveries` (5) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_deliveries: Option<u32>,
    /// Most runs of this task per worker: `"100/s"`, `"10/m"`, `"5/h"` (Celery's format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// Hard time limit: the task is aborted after this.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "seconds_opt")]
    pub time_limit: Option<Duration>,
    /// Soft time limit: the task is told to stop after this.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "seconds_opt")]
    pub soft_time_limit: Option<Duration>,
    /// Run in one of the worker's child processes (`#[artel::task(process)]`): a crash or
    /// a runaway loop then takes down only that child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<bool>,
    /// When the child running it dies, deliver the message again (after its lease, the
    /// delivery counted toward `max_deliveries`) instead of storing `WorkerLostError`
    /// (Celery's `reject_on_worker_lost`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_on_worker_lost: Option<bool>,
    /// Store no result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_result: Option<bool>,
    /// Acknowledge after the task finished instead of when it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acks_late: Option<bool>,
    /// Group this call belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Position inside the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_index: Option<u32>,
    /// Client id for `rpc://` replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// While a call with the same unique key is queued or running (at most this long),
    /// sending returns that call's id instead of queueing another.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "seconds_opt")]
    pub unique_for: Option<Duration>,
    /// The unique key of this call; by default the task's name and its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_key: Option<String>,
    /// Runs holding the lock this names, with `{param}` read from the call's arguments
    /// (`#[artel::task(lock = "report-{customer}")]`): runs of one key never overlap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// How long a run waits for its lock before it is published again for later
    /// instead of holding a worker slot (default: it does not wait).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "seconds_opt")]
    pub lock_timeout: Option<Duration>,
    /// Most runs of this task across every worker of the broker (`"50/s"`, Celery's
    /// format); a run over it is published again for its turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_global: Option<String>,
    /// Makes `rate_limit_global` hold per key instead, with `{param}` read from the
    /// call's arguments (`"{customer_id}"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_key: Option<String>,
    /// A successful result is kept this long in the backend's shared cache, and a call
    /// with the same arguments meanwhile is answered from it without running.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "seconds_opt")]
    pub cache_for: Option<Duration>,
    /// The key this call's result is cached under, instead of its arguments (a task
    /// with `cache_for`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// The group (a tenant) this call belongs to: artel's brokers serve a queue's groups
    /// round-robin, so one group's backlog does not hold up another's calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_key: Option<String>,
    /// Most runs of one group ([`Self::group_key`]) at once across every worker; a run
    /// over it is published again for later. Calls without a group are not capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running_per_group: Option<u32>,
    /// Other Celery options (`link`, `routing_key`, ...), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Signature {
    /// A call of `task` with no arguments and default options.
    pub fn new(task: impl Into<String>) -> Self {
        Self {
            task: task.into(),
            args: Vec::new(),
            kwargs: Map::new(),
            options: TaskOptions::default(),
            subtask_type: None,
            immutable: false,
            extra: Map::new(),
        }
    }

    /// Sets the positional arguments.
    pub fn with_args(mut self, args: Vec<Value>) -> Self {
        self.args = args;
        self
    }

    /// Adds one keyword argument.
    pub fn kwarg(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.kwargs.insert(name.into(), value.into());
        self
    }

    /// Pre-assigns the task id.
    pub fn task_id(mut self, id: impl Into<String>) -> Self {
        self.options.task_id = Some(id.into());
        self
    }

    /// Routes to `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.options.queue = Some(queue.into());
        self
    }

    /// Sets the priority (0-9, higher first; larger values are clamped to 9).
    pub fn priority(mut self, priority: u8) -> Self {
        self.options.priority = Some(priority.min(9));
        self
    }

    /// Delays execution by `delay` after sending.
    pub fn countdown(mut self, delay: Duration) -> Self {
        self.options.countdown = Some(delay);
        self
    }

    /// Delays execution until `at`.
    pub fn eta(mut self, at: Timestamp) -> Self {
        self.options.eta = Some(at);
        self
    }

    /// Discards the task when not started within `ttl` of sending.
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.options.expires = Some(Expires::In(ttl));
        self
    }

    /// Discards the task when not started by `at`.
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.options.expires = Some(Expires::At(at));
        self
    }

    /// Sets how many retries a failing call may get.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.options.max_retries = Some(retries);
        self
    }

    /// Sets the hard time limit.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.options.time_limit = Some(limit);
        self
    }

    /// Sets the soft time limit.
    pub fn soft_time_limit(mut self, limit: Duration) -> Self {
        self.options.soft_time_limit = Some(limit);
        self
    }

    /// Stores no result when `ignore` is true.
    pub fn ignore_result(mut self, ignore: bool) -> Self {
        self.options.ignore_result = Some(ignore);
        self
    }

    /// Acknowledges only after completion when `late` is true.
    pub fn acks_late(mut self, late: bool) -> Self {
        self.options.acks_late = Some(late);
        self
    }

    /// Makes the call unique for up to `ttl`: while it is queued or running, sending the
    /// same task with the same arguments (or [`Signature::unique_key`]) returns its id.
    pub fn unique_for(mut self, ttl: Duration) -> Self {
        self.options.unique_for = Some(ttl);
        self
    }

    /// Makes the call unique under `key` instead of its task and arguments (for
    /// [`UNIQUE_FOR`] unless [`Signature::unique_for`] says how long).
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.options.unique_key = Some(key.into());
        self
    }

    /// Caches this call's result under `key` instead of its arguments (the task must
    /// declare `cache_for`): calls naming the same key share one result.
    pub fn cache_key(mut self, key: impl Into<String>) -> Self {
        self.options.cache_key = Some(key.into());
        self
    }

    /// Puts this call in group `key` (a tenant, a customer): the queue serves its groups
    /// round-robin (sqlite://, redis://, postgres://), so a group with a backlog of
    /// 100,000 does not delay another group's few calls.
    pub fn group_key(mut self, key: impl Into<String>) -> Self {
        self.options.group_key = Some(key.into());
        self
    }

    /// The unique key and how long it holds, for a call sent as unique.
    pub fn unique(&self) -> Option<(String, Duration)> {
        let opts = &self.options;
        let ttl = match (opts.unique_for, &opts.unique_key) {
            (Some(ttl), _) => ttl,
            (None, Some(_)) => UNIQUE_FOR,
            (None, None) => return None,
        };
        let key = opts
            .unique_key
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.task, arguments_digest(&self.args, &self.kwargs)));
        Some((key, ttl))
    }

    /// Marks the signature immutable: a parent's result is not prepended (Celery `.si()`).
    pub fn immutable(mut self) -> Self {
        self.immutable = true;
        self
    }
}

/// A short name for a call's arguments: equal for equal arguments, keyword order
/// aside (keys are kept sorted), so it can key a unique call or a cached result.
pub fn arguments_digest(args: &[Value], kwargs: &Map<String, Value>) -> String {
    let call = serde_json::json!([args, kwargs]).to_string();
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, call.as_bytes()).simple().to_string()
}

impl Serialize for Expires {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Expires::In(d) => seconds_opt::serialize(&Some(*d), s),
            Expires::At(ts) => s.serialize_str(&to_iso(ts)),
        }
    }
}

impl<'de> Deserialize<'de> for Expires {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::String(text) => parse_iso(&text)
                .map(Expires::At)
                .map_err(|e| D::Error::custom(format!("bad expires time {text:?}: {e}"))),
            Value::Number(n) => n
                .as_f64()
                .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
                .map(Expires::In)
                .ok_or_else(|| D::Error::custom(format!("bad expires seconds {n}"))),
            other => Err(D::Error::custom(format!("expires must be seconds or ISO time, not {other}"))),
        }
    }
}
