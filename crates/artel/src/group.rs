//! [`GroupResult`]: the results of a group's members, read together.

use std::time::Duration;

use artel_core::{Backend, State};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use crate::client::{AsyncResult, ResultError};

/// Members waited for at once: all of a group's results arrive together, not one round
/// trip after another, while a group of thousands holds few waits on the backend.
const AT_ONCE: usize = 64;

/// Handles to the results of a group's members, in member order (Celery's `GroupResult`).
pub struct GroupResult {
    id: String,
    results: Vec<AsyncResult>,
    backend: Backend,
}

impl GroupResult {
    /// Group `id` whose members are `task_ids`, in member order, with results in `backend`.
    pub fn new(id: String, task_ids: Vec<String>, backend: &Backend) -> Self {
        let results = task_ids.into_iter().map(|task| AsyncResult::new(task, backend)).collect();
        Self { id, results, backend: backend.clone() }
    }

    /// Group `id` as saved by [`GroupResult::save`] (or Python's `GroupResult.save()`);
    /// `None` when it was never saved or has expired.
    pub async fn restore(id: &str, backend: &Backend) -> Result<Option<Self>, ResultError> {
        let saved = backend
            .results()
            .restore_group(id)
            .await
            .map_err(|source| ResultError::Backend { id: id.to_owned(), source })?;
        Ok(saved.map(|task_ids| Self::new(id.to_owned(), task_ids, backend)))
    }

    /// Saves which tasks make up the group, so it can be restored by its id alone (kept
    /// a day, like results).
    pub async fn save(&self) -> Result<(), ResultError> {
        let ids: Vec<String> = self.results.iter().map(|r| r.id().to_owned()).collect();
        self.backend
            .results()
            .save_group(&self.id, &ids, Some(artel_core::RESULT_EXPIRES))
            .await
            .map_err(|source| ResultError::Backend { id: self.id.clone(), source })
    }

    /// The group id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Each member's result handle, in member order.
    pub fn results(&self) -> &[AsyncResult] {
        &self.results
    }

    /// Waits (all within `timeout`) for every member, [`AT_ONCE`] of them at a time; their
    /// values in member order, or the first failed member's error (in member order).
    pub async fn get(&self, timeout: Duration) -> Result<Vec<Value>, ResultError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let waits = self.results.iter().map(|result| async move {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            result.get(left).await.map_err(|e| match e {
                ResultError::Timeout { id, .. } => ResultError::Timeout { id, timeout },
                other => other,
            })
        });
        stream::iter(waits).buffered(AT_ONCE).try_collect().await
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
        stream::iter(self.results.iter().map(AsyncResult::state)).buffered(AT_ONCE).try_collect().await
    }
}

impl std::fmt::Debug for GroupResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupResult").field("id", &self.id).field("results", &self.results).finish()
    }
}
