//! Task and worker events, Celery's monitoring stream (`task-received`,
//! `task-succeeded`, `worker-heartbeat`...): the worker says what happened through an
//! [`EventSink`]; a transport (artel-celery) publishes it where Flower listens.

use std::fmt;

use serde_json::{Map, Value};

/// Where a worker's events go.
pub trait EventSink: Send + Sync + fmt::Debug {
    /// Publishes event `kind` with its own `fields`; the sink adds the fields every event
    /// carries (hostname, timestamp, pid, clock). Must not block.
    fn emit(&self, kind: &'static str, fields: Map<String, Value>);
}

/// Python's `repr` of an error as Celery's events carry it: `ValueError('boom')`.
pub(crate) fn exception_repr(error: &artel_core::TaskError) -> String {
    format!("{}({:?})", error.exc_type(), error.message())
}
