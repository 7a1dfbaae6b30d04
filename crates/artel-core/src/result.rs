//! Stored task results in Celery's result backend format.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{TaskError, TaskErrorKind};
use crate::state::State;
use crate::time::{Timestamp, iso_opt};

/// How long results, saved groups and chord counters are kept unless configured
/// otherwise: Celery's `result_expires` default, one day.
pub const RESULT_EXPIRES: std::time::Duration = std::time::Duration::from_secs(86_400);

/// One stored result: `{"status", "result", "traceback", "children", "date_done", "task_id"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The state.
    pub status: State,
    /// The return value (SUCCESS), encoded exception (FAILURE/RETRY/REVOKED) or progress meta.
    #[serde(default)]
    pub result: Value,
    /// Readable failure detail.
    #[serde(default)]
    pub traceback: Option<String>,
    /// Result tuples of tasks this task published.
    #[serde(default)]
    pub children: Vec<Value>,
    /// When the task became ready; null before.
    #[serde(default, with = "iso_opt")]
    pub date_done: Option<Timestamp>,
    /// The task id.
    pub task_id: String,
    /// Extended fields (`group_id`, `parent_id`, `name`, `worker`, ...), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TaskResult {
    /// A successful result holding `value`.
    pub fn success(task_id: &str, value: Value, now: Timestamp) -> Self {
        Self::new(task_id, State::Success, value, None, Some(now))
    }

    /// A failure (or revocation, by the error's kind) holding the encoded exception.
    pub fn failure(task_id: &str, error: &TaskError, now: Timestamp) -> Self {
        let state = if error.kind() == TaskErrorKind::Revoked { State::Revoked } else { State::Failure };
        let traceback = error.traceback().map(str::to_owned);
        Self::new(task_id, state, encode_exception(error), traceback, Some(now))
    }

    /// A non-final state such as STARTED with its meta value.
    pub fn progress(task_id: &str, state: State, meta: Value) -> Self {
        Self::new(task_id, state, meta, None, None)
    }

    fn new(task_id: &str, status: State, result: Value, traceback: Option<String>, done: Option<Timestamp>) -> Self {
        Self {
            status,
            result,
            traceback,
            children: Vec::new(),
            date_done: done,
            task_id: task_id.to_owned(),
            extra: Map::new(),
        }
    }

    /// The error this result holds, when its state raises on `get()`.
    pub fn error(&self) -> Option<TaskError> {
        if !self.status.is_exception() {
            return None;
        }
        let exc_type = self.result.get("exc_type").and_then(Value::as_str).unwrap_or("Exception");
        let message = match self.result.get("exc_message") {
            Some(Value::Array(parts)) => parts.iter().map(display_value).collect::<Vec<_>>().join(", "),
            Some(other) => display_value(other),
            None => String::new(),
        };
        let kind = match self.status {
            State::Revoked => TaskErrorKind::Revoked,
            _ => TaskErrorKind::from_exc_type(exc_type),
        };
        let error = TaskError::new(kind, exc_type, message);
        Some(match &self.traceback {
            Some(tb) => error.with_traceback(tb.clone()),
            None => error,
        })
    }

    /// What a ready result says: its value, or the error it holds.
    pub fn outcome(self) -> Result<Value, TaskError> {
        match self.error() {
            Some(error) => Err(error),
            None => Ok(self.result),
        }
    }
}

fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Celery's JSON exception encoding, which Python re-raises as the named class.
pub fn encode_exception(error: &TaskError) -> Value {
    let args = match error.exc_args() {
        Some(args) => Value::from(args),
        // No message is no arguments, as Python keeps `SoftTimeLimitExceeded()`.
        None if error.message().is_empty() => json!([]),
        None => json!([error.message()]),
    };
    json!({"exc_type": error.exc_type(), "exc_message": args, "exc_module": error.exc_module()})
}
