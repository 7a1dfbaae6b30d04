//! Unique tasks ([`UniqueKeys`]): while a task sent with a unique key is queued or
//! running, sending the same key again returns that task's id instead of queueing
//! another.
//!
//! Invariants: a claim names the task holding the key and lapses after its time to live
//! (so a sender or worker that died never pins a key for good); only the holding task's
//! finish frees the key early.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::broker::BrokerResult;

/// Where unique keys are claimed.
#[async_trait]
pub trait UniqueKeys: Send + Sync + fmt::Debug {
    /// Claims `key` for `task_id` for `ttl` unless a live claim holds it: the holding
    /// task's id (`task_id` itself when this call claimed it).
    async fn claim_unique(&self, key: &str, task_id: &str, ttl: Duration) -> BrokerResult<String>;

    /// Frees `key` if `task_id` still holds it (its task finished).
    async fn release_unique(&self, key: &str, task_id: &str) -> BrokerResult<()>;
}
