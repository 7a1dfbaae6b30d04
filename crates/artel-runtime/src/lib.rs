//! artel's worker runtime.
//!
//! A [`Worker`] consumes one or more queues of any [`artel_core::Broker`], runs each
//! task from the [`artel_core::Registry`] on an [`artel_pool::Pool`] with at most
//! `concurrency` in flight, stores the outcome in the result backend and then
//! acknowledges (acks late: a task whose worker dies is delivered again).

mod active;
mod canvas;
mod components;
mod control;
mod exclusive;
mod execute;
mod group_cap;
mod memo;
mod observe;
mod process;
mod rate;
mod retry;
mod revoke;
mod slots;
mod supervise;
mod supervisor;
mod throttle;
mod tuning;
mod worker;

pub use artel_core::worker::{
    ActiveTask, Component, ComponentError, Scope, Stop, TaskTiming, WorkerControl, WorkerStats,
};
pub use artel_core::{EventSink, TaskEvent};
pub use components::{BoardControl, BurstWatcher, StatsReporter};
pub use memo::memo_prefix;
pub use process::{ProcessSettings, child_functions};
pub use rate::parse_rate;
pub use worker::{Worker, WorkerConfig};

/// The node name of a worker that was given none: `artel.<pid>@<host>`.
pub fn default_worker_name() -> String {
    format!("artel.{}@{}", std::process::id(), hostname())
}

pub use artel_core::hostname;
