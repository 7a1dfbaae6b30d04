//! [`GroupResult`]: the results of a group's members, read together.

use std::time::Duration;

use std::collections::HashMap;

use artel_core::{Backend, State, TaskResult};
use serde_json::Value;

use crate::client::{AsyncResult, ResultError};

/// Members' states read with one request at most.
const READ_AT_ONCE: usize = 1000;

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

    /// Waits (all within `timeout`) for every member, watching all of them at once; their
    /// values in member order, or the error of the first member (in member order) that
    /// failed — returned as soon as the members before it have succeeded.
    pub async fn get(&self, timeout: Duration) -> Result<Vec<Value>, ResultError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let ids: Vec<String> = self.results.iter().map(|r| r.id().to_owned()).collect();
        let backend_error = |source| ResultError::Backend { id: self.id.clone(), source };
        let mut watch = self.backend.watch().await.map_err(backend_error)?;
        watch.watch(&ids).await.map_err(backend_error)?;
        let mut done: HashMap<String, TaskResult> = HashMap::with_capacity(ids.len());
        let mut values = Vec::with_capacity(ids.len());
        while let Some(id) = ids.get(values.len()) {
            let Some(result) = done.get(id) else {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(ResultError::Timeout { id: id.clone(), timeout });
                }
                for result in watch.next(left).await.map_err(backend_error)? {
                    done.insert(result.task_id.clone(), result);
                }
                continue;
            };
            if let Some(error) = result.error() {
                return Err(ResultError::Task { id: id.clone(), error });
            }
            values.push(result.result.clone());
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

    /// Each member's state (PENDING where nothing is stored), read in batches.
    async fn states(&self) -> Result<Vec<State>, ResultError> {
        let ids: Vec<String> = self.results.iter().map(|r| r.id().to_owned()).collect();
        let mut states = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(READ_AT_ONCE) {
            let stored = self
                .backend
                .results()
                .get_many(chunk)
                .await
                .map_err(|source| ResultError::Backend { id: self.id.clone(), source })?;
            states.extend(stored.into_iter().map(|r| r.map_or(State::Pending, |r| r.status)));
        }
        Ok(states)
    }
}

impl std::fmt::Debug for GroupResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupResult").field("id", &self.id).field("results", &self.results).finish()
    }
}
