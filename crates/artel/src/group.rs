//! [`GroupResult`]: the results of a group's members, read together.

use std::time::Duration;

use artel_core::State;
use serde_json::Value;

use crate::client::{AsyncResult, ResultError};

/// Handles to the results of a group's members, in member order (Celery's `GroupResult`).
#[derive(Debug)]
pub struct GroupResult {
    id: String,
    results: Vec<AsyncResult>,
}

impl GroupResult {
    /// A group `id` whose members' results are `results`, in member order.
    pub fn new(id: String, results: Vec<AsyncResult>) -> Self {
        Self { id, results }
    }

    /// The group id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Each member's result handle, in member order.
    pub fn results(&self) -> &[AsyncResult] {
        &self.results
    }

    /// Waits (all within `timeout`) for every member; their values in member order, or
    /// the first failed member's error.
    pub async fn get(&self, timeout: Duration) -> Result<Vec<Value>, ResultError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut values = Vec::with_capacity(self.results.len());
        for result in &self.results {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            values.push(result.get(left).await.map_err(|e| match e {
                ResultError::Timeout { id, .. } => ResultError::Timeout { id, timeout },
                other => other,
            })?);
        }
        Ok(values)
    }

    /// How many members succeeded.
    pub async fn completed_count(&self) -> Result<usize, ResultError> {
        Ok(self.states().await?.into_iter().filter(|s| *s == State::Success).count())
    }

    /// Whether every member has finished.
    pub async fn ready(&self) -> Result<bool, ResultError> {
        Ok(self.states().await?.into_iter().all(State::is_ready))
    }

    /// Whether every member succeeded.
    pub async fn successful(&self) -> Result<bool, ResultError> {
        Ok(self.states().await?.into_iter().all(|s| s == State::Success))
    }

    /// Whether any member failed (or was revoked).
    pub async fn failed(&self) -> Result<bool, ResultError> {
        Ok(self.states().await?.into_iter().any(State::is_exception))
    }

    async fn states(&self) -> Result<Vec<State>, ResultError> {
        let mut states = Vec::with_capacity(self.results.len());
        for result in &self.results {
            states.push(result.state().await?);
        }
        Ok(states)
    }
}
