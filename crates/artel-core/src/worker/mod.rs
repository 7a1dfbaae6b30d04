//! The seams between a worker and what runs beside it: a [`Component`] is a background
//! loop a worker supervises; its [`Scope`] shows it the worker's name, counters
//! ([`WorkerStats`]) and remote-control handle ([`WorkerControl`]); a [`TaskObserver`]
//! hears how each message ended (metrics); [`remote`] answers `inspect` and `control`.
//! Components that
//! speak a wire protocol (Celery's remote control and events) implement these without
//! depending on the worker runtime.

mod component;
mod control;
mod observe;
pub mod remote;
mod stats;

pub use component::{Component, ComponentError, Scope, Stop};
pub use control::{ActiveTask, ProcessesInfo, TuneError, WorkerControl};
pub use observe::{Outcome, TaskObserver};
pub use stats::{TaskTiming, WorkerStats};
