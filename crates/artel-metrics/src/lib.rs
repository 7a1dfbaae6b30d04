//! Prometheus metrics for a worker ([`Metrics`], a
//! [`TaskObserver`](artel_core::worker::TaskObserver)) and the `/metrics` endpoint that
//! serves them ([`MetricsServer`], a worker component). Names and labels: docs/metrics.md.
//!
//! Invariants: each message a worker takes is counted once in `artel_tasks_total`, under
//! its outcome; label values are registered task names (or `unregistered`) and the
//! worker's queues, so input cannot grow the label set. The hot path takes a read lock
//! and bumps atomics; the first report of a (task, queue) pair builds its series.

mod families;
mod server;

pub use families::Metrics;
pub use server::MetricsServer;
