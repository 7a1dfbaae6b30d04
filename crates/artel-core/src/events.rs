//! Task events: what a worker says happened to each task, for monitors. The worker emits
//! them typed through an [`EventSink`]; a transport turns them into its own format
//! (`artel-celery` into Celery's `task-received`, `task-succeeded`... that Flower reads).

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::error::TaskError;
use crate::time::Timestamp;

/// One thing that happened to task `id`.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskEvent {
    /// The worker took the message and will run it.
    Received {
        /// Task id.
        id: String,
        /// Task name.
        name: String,
        /// Printable positional arguments, as the producer wrote them.
        args: Option<String>,
        /// Printable keyword arguments.
        kwargs: Option<String>,
        /// First task of the workflow.
        root_id: Option<String>,
        /// Task that published this one.
        parent_id: Option<String>,
        /// Retries so far.
        retries: u32,
        /// Earliest run time.
        eta: Option<Timestamp>,
        /// Time after which it must not run.
        expires: Option<Timestamp>,
        /// The queue it was consumed from.
        queue: String,
        /// When the producer sent it, in unix milliseconds, where it says.
        sent_at_ms: Option<i64>,
        /// The run's place in its trace ([`crate::TraceContext::of_run`]).
        trace: crate::TraceContext,
        /// The span the run continues: the message's `traceparent` (its producer's span,
        /// or the workflow step before it), where it carries one.
        parent_span_id: Option<u64>,
    },
    /// The run started.
    Started {
        /// Task id.
        id: String,
    },
    /// The run returned `result` after `runtime`.
    Succeeded {
        /// Task id.
        id: String,
        /// The return value.
        result: Value,
        /// How long it ran.
        runtime: Duration,
    },
    /// The task failed for good (or is not registered here).
    Failed {
        /// Task id.
        id: String,
        /// Why.
        error: TaskError,
    },
    /// The task will run again after a retry.
    Retried {
        /// Task id.
        id: String,
        /// What asked for the retry.
        error: TaskError,
    },
    /// The task was revoked: dropped before it ran (or `expired`), or stopped while
    /// running (`terminated`).
    Revoked {
        /// Task id.
        id: String,
        /// It was running and was stopped.
        terminated: bool,
        /// Its `expires` time passed before it ran.
        expired: bool,
    },
    /// The message was dead-lettered: unreadable, unregistered, delivered too often...
    Rejected {
        /// Task id ("" when unreadable).
        id: String,
        /// Task name, as the message says.
        name: String,
        /// The queue it was consumed from.
        queue: String,
        /// Why.
        error: TaskError,
    },
}

/// Where a worker's task events go.
pub trait EventSink: Send + Sync + fmt::Debug {
    /// Publishes `event`; the sink adds what every event carries in its format
    /// (hostname, timestamp, pid, clock). Must not block.
    fn emit(&self, event: TaskEvent);

    /// Whether task events are wanted now (a Celery worker's task events can be turned
    /// on and off remotely); when not, the worker does not even build them.
    fn listening(&self) -> bool {
        true
    }
}

/// `added` beside `existing` (if any): both hear every event.
pub fn also(
    existing: Option<std::sync::Arc<dyn EventSink>>,
    added: std::sync::Arc<dyn EventSink>,
) -> std::sync::Arc<dyn EventSink> {
    match existing {
        Some(existing) => std::sync::Arc::new(Both(existing, added)),
        None => added,
    }
}

/// Both sinks hear every event, the first first.
#[derive(Debug)]
pub struct Both(pub std::sync::Arc<dyn EventSink>, pub std::sync::Arc<dyn EventSink>);

impl EventSink for Both {
    fn emit(&self, event: TaskEvent) {
        self.0.emit(event.clone());
        self.1.emit(event);
    }

    fn listening(&self) -> bool {
        self.0.listening() || self.1.listening()
    }
}
