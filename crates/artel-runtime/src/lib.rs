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
mod observe;
mod process;
mod rate;
mod retry;
mod revoke;
mod supervise;
mod supervisor;
mod worker;

pub use artel_core::worker::{
    ActiveTask, Component, ComponentError, Scope, Stop, TaskTiming, WorkerControl, WorkerStats,
};
pub use artel_core::{EventSink, TaskEvent};
pub use components::{BurstWatcher, StatsReporter};
pub use process::{ProcessSettings, child_functions};
pub use rate::parse_rate;
pub use worker::{Worker, WorkerConfig};

/// The node name of a worker that was given none: `artel.<pid>@<host>`.
pub fn default_worker_name() -> String {
    format!("artel.{}@{}", std::process::id(), hostname())
}

/// This machine's name, for worker and producer names (`artel.<pid>@<host>`); read once,
/// since the worker puts it in every STARTED/RECEIVED result it stores.
pub fn hostname() -> String {
    static HOSTNAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOSTNAME
        .get_or_init(|| {
            std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".to_owned())
        })
        .clone()
}
