//! Errors with a kind: the runtime decides what to do from the kind, never from the driver.

use std::fmt;

/// Boxed error source, as carried inside [`BrokerError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong with a broker or result backend, independent of which driver raised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerErrorKind {
    /// The server could not be reached or the connection broke; retrying later may work.
    Connection,
    /// An operation did not finish in time.
    Timeout,
    /// A guarded write lost its race (the lease or state changed underneath).
    Conflict,
    /// The thing asked for does not exist.
    NotFound,
    /// The backend cannot do this at all.
    Unsupported,
    /// Stored data could not be decoded.
    Corrupt,
    /// The broker was closed by its owner.
    Closed,
    /// The broker's storage is full: writes fail until space is freed, then work again.
    StorageFull,
    /// Anything else.
    Other,
}

/// An error from a broker or result backend: a kind, what was being done, and the cause.
#[derive(Debug)]
pub struct BrokerError {
    kind: BrokerErrorKind,
    context: String,
    source: Option<BoxError>,
}

impl BrokerError {
    /// A new error of `kind` while doing `context` (e.g. "publishing to queue `celery`").
    pub fn new(kind: BrokerErrorKind, context: impl Into<String>) -> Self {
        Self { kind, context: context.into(), source: None }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The kind, for deciding whether to retry.
    pub fn kind(&self) -> BrokerErrorKind {
        self.kind
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, BrokerErrorKind::Connection | BrokerErrorKind::Timeout | BrokerErrorKind::StorageFull)
    }
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.context)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for BrokerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Why a task did not return a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskErrorKind {
    /// The task body returned an error.
    Failed,
    /// The message's arguments do not fit the task's parameters.
    InvalidArguments,
    /// No task of that name is registered with this worker.
    NotRegistered,
    /// The message could not be decoded.
    InvalidMessage,
    /// The task panicked.
    Panicked,
    /// The task ran past its time limit.
    TimedOut,
    /// The task was revoked or expired before it ran.
    Revoked,
    /// The task asked to be run again ([`TaskError::retry`]).
    Retry,
    /// The message was delivered `max_deliveries` times and its worker died each time
    /// (crash, out of memory, kill): it is quarantined rather than run again.
    WorkerLost,
    /// The task asked that nothing be recorded of this run (Celery's `Ignore`): its
    /// message is acknowledged and no state is stored.
    Ignored,
    /// The task rejected its message for good (Celery's `Reject(requeue=False)`): it is
    /// dead-lettered with the reason and the FAILURE stored, as Celery stores one.
    Rejected,
    /// The task handed its message back to be delivered again (Celery's
    /// `Reject(requeue=True)`); nothing is stored, and the deliveries still count toward
    /// `max_deliveries`, so a task that always does so ends in the dead letters.
    Requeued,
}

/// (kind, Celery exception name, Python module) for the kinds with a fixed exception.
const KIND_EXCEPTIONS: [(TaskErrorKind, &str, &str); 10] = [
    (TaskErrorKind::InvalidArguments, "TypeError", "builtins"),
    (TaskErrorKind::NotRegistered, "NotRegistered", "celery.exceptions"),
    (TaskErrorKind::InvalidMessage, "DecodeError", "kombu.exceptions"),
    (TaskErrorKind::Panicked, "Panic", "artel.errors"),
    (TaskErrorKind::TimedOut, "TimeLimitExceeded", "celery.exceptions"),
    (TaskErrorKind::Revoked, "TaskRevokedError", "celery.exceptions"),
    (TaskErrorKind::Retry, "Retry", "celery.exceptions"),
    (TaskErrorKind::WorkerLost, "WorkerLostError", "billiard.exceptions"),
    (TaskErrorKind::Ignored, "Ignore", "celery.exceptions"),
    (TaskErrorKind::Rejected, "Reject", "celery.exceptions"),
];

/// Celery's exceptions a Python task run by artel may end with.
const CELERY: [&str; 2] = ["SoftTimeLimitExceeded", "MaxRetriesExceededError"];

/// Python builtin exceptions a task may name, so Python re-raises the real class.
const BUILTINS: [&str; 10] = [
    "Exception",
    "RuntimeError",
    "ValueError",
    "TypeError",
    "KeyError",
    "IndexError",
    "LookupError",
    "OSError",
    "TimeoutError",
    "NotImplementedError",
];

impl TaskErrorKind {
    /// The Celery exception name that stands for this kind, if it has a fixed one.
    pub fn exc_type(self) -> Option<&'static str> {
        KIND_EXCEPTIONS.iter().find(|(k, ..)| *k == self).map(|(_, name, _)| *name)
    }

    /// The kind an exception name read back from a result stands for.
    pub fn from_exc_type(exc_type: &str) -> Self {
        KIND_EXCEPTIONS.iter().find(|(_, name, _)| *name == exc_type).map_or(TaskErrorKind::Failed, |(k, ..)| *k)
    }
}

/// The Python module of an exception name (`builtins`, `celery.exceptions`, ...).
pub fn exc_module(exc_type: &str) -> &'static str {
    if let Some((_, _, module)) = KIND_EXCEPTIONS.iter().find(|(_, name, _)| *name == exc_type) {
        return module;
    }
    if BUILTINS.contains(&exc_type) {
        return "builtins";
    }
    if CELERY.contains(&exc_type) { "celery.exceptions" } else { "artel.errors" }
}

/// The error a task returns; converts from any `std::error::Error` so `?` works in task bodies.
///
/// It maps onto Celery's exception encoding (`exc_type`, `exc_message`, `exc_module`) so
/// Python clients re-raise it. Like `anyhow::Error` it deliberately does not implement
/// `std::error::Error`, which is what makes the blanket `From` possible.
#[derive(Clone, PartialEq)]
pub struct TaskError {
    kind: TaskErrorKind,
    exc_type: String,
    message: String,
    traceback: Option<String>,
    retry_after: Option<std::time::Duration>,
    raised: Option<Box<Raised>>,
}

/// A Python exception as raised: its class's module and its arguments, which Celery
/// stores as `exc_module` and `exc_message` so that clients re-raise the same class
/// with the same arguments.
#[derive(Debug, Clone, PartialEq)]
struct Raised {
    module: String,
    args: Vec<serde_json::Value>,
}

impl TaskError {
    /// A plain task failure with a message, reported to Python as `RuntimeError`.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::new(TaskErrorKind::Failed, "RuntimeError", message)
    }

    /// An error with an explicit Celery exception name (e.g. `ValueError`).
    pub fn new(kind: TaskErrorKind, exc_type: impl Into<String>, message: impl fmt::Display) -> Self {
        Self {
            kind,
            exc_type: exc_type.into(),
            message: message.to_string(),
            traceback: None,
            retry_after: None,
            raised: None,
        }
    }

    /// Asks the worker to run the task again (Celery's `self.retry()`), within the task's
    /// `max_retries`, after its backoff or the countdown set with [`TaskError::after`].
    pub fn retry(reason: impl fmt::Display) -> Self {
        Self::of_kind(TaskErrorKind::Retry, reason)
    }

    /// Sets the countdown of a [`TaskError::retry`].
    pub fn after(mut self, countdown: std::time::Duration) -> Self {
        self.retry_after = Some(countdown);
        self
    }

    /// The countdown a retry asked for, if any.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// An error of `kind`, named with the kind's own Celery exception.
    pub fn of_kind(kind: TaskErrorKind, message: impl fmt::Display) -> Self {
        Self::new(kind, kind.exc_type().unwrap_or("RuntimeError"), message)
    }

    /// Arguments that do not fit: reported as Python's `TypeError`.
    pub fn invalid_arguments(task: &str, detail: impl fmt::Display) -> Self {
        Self::of_kind(TaskErrorKind::InvalidArguments, format!("{task}(): {detail}"))
    }

    /// Unknown task name: reported as Celery's `NotRegistered`.
    pub fn not_registered(task: &str) -> Self {
        Self::of_kind(TaskErrorKind::NotRegistered, task)
    }

    /// Attaches readable detail (error chain, backtrace) stored as the result's traceback.
    pub fn with_traceback(mut self, traceback: impl Into<String>) -> Self {
        self.traceback = Some(traceback.into());
        self
    }

    /// This error with a traceback as Celery shows one: the detail it has (the error's
    /// chain of causes, a panic's location and backtrace) and then, as a Python traceback
    /// ends, `ExcType: message`. Kept as it is when it already ends so.
    pub fn traced(mut self) -> Self {
        let last = self.to_string();
        self.traceback = Some(match self.traceback.take() {
            Some(detail) if detail.ends_with(&last) => detail,
            Some(detail) => format!("{detail}\n{last}"),
            None => last,
        });
        self
    }

    /// Names the Python module of the exception class and the arguments it was raised
    /// with, kept as Celery keeps them (a Python task run by an artel worker).
    pub fn raised_in(mut self, module: impl Into<String>, args: Vec<serde_json::Value>) -> Self {
        self.raised = Some(Box::new(Raised { module: module.into(), args }));
        self
    }

    /// The Python module of the exception class: the one it was raised in, else the one
    /// its name stands for ([`exc_module`]).
    pub fn exc_module(&self) -> &str {
        self.raised.as_ref().map_or_else(|| exc_module(&self.exc_type), |raised| raised.module.as_str())
    }

    /// The arguments the exception was raised with, when it was raised in Python.
    pub fn exc_args(&self) -> Option<&[serde_json::Value]> {
        self.raised.as_ref().map(|raised| raised.args.as_slice())
    }

    /// The kind of failure.
    pub fn kind(&self) -> TaskErrorKind {
        self.kind
    }

    /// The exception class name Python will see.
    pub fn exc_type(&self) -> &str {
        &self.exc_type
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Extra detail, if any.
    pub fn traceback(&self) -> Option<&str> {
        self.traceback.as_deref()
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.exc_type, self.message)
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskError({:?}, {self})", self.kind)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    fn from(err: E) -> Self {
        let mut chain = Vec::new();
        let mut cause = err.source();
        while let Some(c) = cause {
            chain.push(format!("caused by: {c}"));
            cause = c.source();
        }
        let error = TaskError::msg(&err);
        if chain.is_empty() { error } else { error.with_traceback(chain.join("\n")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn task_error_keeps_the_cause_chain() {
        let err: TaskError = Outer(std::io::Error::other("disk full")).into();
        assert_eq!(err.to_string(), "RuntimeError: outer");
        assert_eq!(err.traceback(), Some("caused by: disk full"));
    }

    #[test]
    fn a_python_exception_keeps_its_module_and_arguments_as_celery_encodes_them() {
        let args = vec![serde_json::json!("code 7"), serde_json::json!({"retry": false})];
        let raised = TaskError::new(TaskErrorKind::Failed, "PaymentDeclined", "('code 7', ...)");
        let raised = raised.raised_in("shop.errors", args);
        let encoded = crate::result::encode_exception(&raised);
        let celery = serde_json::json!({
            "exc_type": "PaymentDeclined", "exc_module": "shop.errors", "exc_message": ["code 7", {"retry": false}],
        });
        assert_eq!(encoded, celery);
        let plain = crate::result::encode_exception(&TaskError::new(TaskErrorKind::Failed, "MyError", "why"));
        assert_eq!(
            plain,
            serde_json::json!({"exc_type": "MyError", "exc_module": "artel.errors", "exc_message": ["why"]})
        );
    }

    #[test]
    fn kinds_map_to_celery_exceptions_and_back() {
        for (kind, name, _) in KIND_EXCEPTIONS {
            assert_eq!(TaskErrorKind::from_exc_type(name), kind);
            assert_eq!(TaskError::of_kind(kind, "x").exc_type(), name);
        }
        assert_eq!(TaskErrorKind::from_exc_type("ValueError"), TaskErrorKind::Failed);
        assert_eq!((exc_module("ValueError"), exc_module("MyError")), ("builtins", "artel.errors"));
    }

    #[test]
    fn broker_error_names_context_and_cause() {
        let err = BrokerError::new(BrokerErrorKind::Connection, "publishing to queue `celery`")
            .with_source(std::io::Error::other("connection refused"));
        assert_eq!(err.to_string(), "publishing to queue `celery`: connection refused");
        assert!(err.is_transient());
    }
}
