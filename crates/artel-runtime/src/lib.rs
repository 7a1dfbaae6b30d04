//! artel's worker runtime.
//!
//! A [`Worker`] consumes one or more queues of any [`artel_core::Broker`], runs each
//! task from the [`artel_core::Registry`] on an [`artel_pool::Pool`] with at most
//! `concurrency` in flight, stores the outcome in the result backend and then
//! acknowledges (acks late: a task whose worker dies is delivered again).

mod execute;
mod rate;
mod retry;
mod stats;
mod worker;

pub use rate::parse_rate;
pub use stats::{TaskTiming, WorkerStats};
pub use worker::{Stop, Worker, WorkerConfig};
