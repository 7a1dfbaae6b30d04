//! [`TaskObserver`]: what a worker tells about each message it handles, for metrics.
//!
//! Every message a worker takes ends in exactly one [`Outcome`], reported once; a run's
//! run's start and end are reported between. Calls are made on the worker's hot path: implementations
//! only count.

use std::time::Duration;

use crate::error::BrokerErrorKind;

/// How the worker settled a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The task returned a value.
    Succeeded,
    /// The task failed for good (time limits, panics and terminations included).
    Failed,
    /// The task failed and was published again to retry.
    Retried,
    /// The message was bad input and went to the dead letters.
    DeadLettered,
    /// Its `expires` time passed before it ran.
    Expired,
    /// It was revoked before it ran.
    Revoked,
    /// Its lock was held: published again for later.
    Deferred,
    /// The worker stopped: the message went back to the queue.
    HandedBack,
    /// The task asked that nothing be recorded (Celery's `Ignore`).
    Ignored,
    /// Answered from the cache without running (`cache_for`).
    Cached,
}

impl Outcome {
    /// The label value: `succeeded`, `failed`, `retried`, `dead_lettered`, `expired`,
    /// `revoked`, `deferred`, `handed_back`, `ignored`, `cached`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Retried => "retried",
            Outcome::DeadLettered => "dead_lettered",
            Outcome::Expired => "expired",
            Outcome::Revoked => "revoked",
            Outcome::Deferred => "deferred",
            Outcome::HandedBack => "handed_back",
            Outcome::Ignored => "ignored",
            Outcome::Cached => "cached",
        }
    }
}

/// Receives a worker's reports. `task` is the registered name, or `unregistered` for a
/// name the worker does not know (so hostile input cannot grow the label set).
pub trait TaskObserver: Send + Sync + std::fmt::Debug {
    /// A message was taken from `queue`; `redelivered` when an earlier delivery of it
    /// ended without an outcome (its worker died or handed it back).
    fn received(&self, task: &str, queue: &str, redelivered: bool);

    /// A run began, after waiting `waited` since it was published or due (when known).
    fn started(&self, task: &str, queue: &str, waited: Option<Duration>);

    /// A run ended (whatever its outcome) after `runtime`.
    fn ran(&self, task: &str, queue: &str, runtime: Duration);

    /// A message was settled.
    fn finished(&self, task: &str, queue: &str, outcome: Outcome);

    /// A broker or result-store operation failed.
    fn broker_error(&self, kind: BrokerErrorKind);

    /// The leases of the messages the worker holds were renewed.
    fn leases_renewed(&self);
}
