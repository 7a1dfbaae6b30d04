//! Sending tasks and reading their results: [`TypedSignature`] and [`AsyncResult`].

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use artel_core::{
    Backend, BrokerError, BrokerErrorKind, Clock, ResultBackend, Revocation, Revocations, Signature, State,
    SystemClock, TaskError, TaskErrorKind, TaskResult,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::App;

/// How long workers remember a revocation.
const REVOCATION_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// Why a task could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// An argument could not be turned into JSON.
    #[error("task {task}: an argument cannot be sent as JSON: {source}")]
    Encode {
        /// The task name.
        task: String,
        /// The serializer's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// The workflow cannot be run as given.
    #[error("cannot send {task}: {source}")]
    Canvas {
        /// The (outer) task name.
        task: String,
        /// What is wrong with it.
        #[source]
        source: artel_core::canvas::CanvasError,
    },
    /// A group was sent where one result was expected.
    #[error("{task} has one result per member: send it with App::send_group")]
    NotOneResult {
        /// The task name.
        task: String,
    },
    /// A unique call was sent to a broker that cannot keep unique keys.
    #[error(
        "{task} is sent as unique, but this broker keeps no unique task keys: use sqlite://, redis://, celery+redis:// or amqp://"
    )]
    NoUniqueKeys {
        /// The task name.
        task: String,
    },
    /// `send_in` was called on an app whose broker is not PostgreSQL.
    #[error(
        "{task}: sending inside a transaction needs the PostgreSQL broker: connect the app with App::connect(\"postgres://...\")"
    )]
    NotTransactional {
        /// The task name.
        task: String,
    },
    /// A unique call was sent inside a transaction.
    #[error(
        "{task}: a unique call cannot be sent inside a transaction (its key is taken outside it); send it with App::send after the commit"
    )]
    UniqueInTransaction {
        /// The task name.
        task: String,
    },
    /// A workflow (group, chain, chord) was marked unique.
    #[error("{task}: only a single task can be unique, not a group, chain or chord; mark its tasks instead")]
    UniqueWorkflow {
        /// The task name.
        task: String,
    },
    /// Something other than a group was sent with `send_group`.
    #[error("{task} is not a group: send it with App::send or App::send_task")]
    NotAGroup {
        /// The task name.
        task: String,
    },
    /// The broker refused or could not be reached.
    #[error("could not publish task {task}: {source}")]
    Broker {
        /// The task name.
        task: String,
        /// The broker's error.
        #[source]
        source: BrokerError,
    },
}

/// Why `get` returned no value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResultError {
    /// The task did not finish within the timeout; it may still run.
    #[error("task {id} did not finish within {timeout:?}; it may still be queued or running")]
    Timeout {
        /// The task id.
        id: String,
        /// How long `get` waited.
        timeout: Duration,
    },
    /// The task failed, was revoked, or was rejected as bad input.
    #[error("task {id} failed: {error}")]
    Task {
        /// The task id.
        id: String,
        /// What the worker reported.
        error: TaskError,
    },
    /// The result backend failed.
    #[error("reading the result of task {id}: {source}")]
    Backend {
        /// The task id.
        id: String,
        /// The backend's error.
        #[source]
        source: BrokerError,
    },
    /// The stored value does not fit the expected type.
    #[error("task {id} returned a value of another type: {source}")]
    Decode {
        /// The task id.
        id: String,
        /// The deserializer's complaint.
        #[source]
        source: serde_json::Error,
    },
}

/// A signature whose result type is known, as made by `#[artel::task]`'s `s(...)`.
pub struct TypedSignature<T> {
    signature: Result<Signature, SendError>,
    _output: PhantomData<fn() -> T>,
}

impl<T> TypedSignature<T> {
    /// Wraps a signature of `task` whose arguments were (maybe) encoded.
    pub fn encode(task: &str, args: Result<Vec<Value>, serde_json::Error>) -> Self {
        let signature = args
            .map(|args| Signature::new(task).with_args(args))
            .map_err(|source| SendError::Encode { task: task.to_owned(), source });
        Self { signature, _output: PhantomData }
    }

    /// Changes the options (`|s| s.countdown(..).queue(..)`).
    pub fn with(mut self, configure: impl FnOnce(Signature) -> Signature) -> Self {
        self.signature = self.signature.map(configure);
        self
    }

    /// The untyped signature (for canvas or sending to another app).
    pub fn into_signature(self) -> Result<Signature, SendError> {
        self.signature
    }

    /// Sends the task through `app`.
    pub async fn delay(self, app: &App) -> Result<AsyncResult<T>, SendError> {
        let id = app.send(self.signature?).await?;
        Ok(AsyncResult::new(id, app.backend()))
    }
}

impl<T> fmt::Debug for TypedSignature<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TypedSignature").field(&self.signature).finish()
    }
}

/// A handle to a sent task's result (Celery's `AsyncResult`).
///
/// ```
/// use std::time::Duration;
/// use artel::{App, AsyncResult, Registry, ResultError, State, TaskError};
///
/// #[artel::task]
/// async fn divide(x: i64, y: i64) -> Result<i64, TaskError> {
///     x.checked_div(y).ok_or_else(|| TaskError::msg("division by zero"))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let app = App::local(Registry::new().with(divide))?;
/// let result = divide::delay(&app, 7, 2).await?;
/// assert_eq!(result.get(Duration::from_secs(5)).await?, 3);
/// assert_eq!(result.state().await?, State::Success);
///
/// // The error a task returned, and the result read again later by its id alone.
/// let failed = divide::delay(&app, 1, 0).await?;
/// let Err(ResultError::Task { error, .. }) = failed.get(Duration::from_secs(5)).await else { panic!("fails") };
/// assert_eq!(error.message(), "division by zero");
/// let later: AsyncResult = AsyncResult::new(failed.id().to_owned(), app.backend());
/// assert_eq!(later.state().await?, State::Failure);
/// app.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct AsyncResult<T = Value> {
    id: String,
    backend: Arc<dyn ResultBackend>,
    revocations: Arc<dyn Revocations>,
    _output: PhantomData<fn() -> T>,
}

impl<T> AsyncResult<T> {
    /// A handle to task `id`'s result in `backend`'s stores.
    pub fn new(id: String, backend: &Backend) -> Self {
        let (results, revocations) = (backend.results().clone(), backend.revocations().clone());
        Self { id, backend: results, revocations, _output: PhantomData }
    }

    /// The task id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The task's state now (PENDING when nothing is stored yet).
    pub async fn state(&self) -> Result<State, ResultError> {
        let stored = self.backend.get(&self.id).await.map_err(|source| self.backend_error(source))?;
        Ok(stored.map_or(State::Pending, |r| r.status))
    }

    /// Whether the task has finished.
    pub async fn ready(&self) -> Result<bool, ResultError> {
        Ok(self.state().await?.is_ready())
    }

    /// What the stored state carries now: progress meta (`ctx.progress`), the worker of a
    /// STARTED task, the value or encoded error of a finished one; `None` while PENDING.
    pub async fn info(&self) -> Result<Option<Value>, ResultError> {
        let stored = self.backend.get(&self.id).await.map_err(|source| self.backend_error(source))?;
        Ok(stored.map(|r| r.result))
    }

    /// Revokes the task (Celery's `revoke`): if it has not started it never will, and
    /// with `terminate` a run in progress is stopped; either way it ends REVOKED.
    ///
    /// Workers learn of it within their `revoke_poll` interval and remember it for a day.
    /// A task not known to be running reads REVOKED at once; a task already running
    /// without `terminate` runs to its end.
    pub async fn revoke(&self, terminate: bool) -> Result<(), ResultError> {
        let now = SystemClock.now();
        let revocation = Revocation { task_id: self.id.clone(), terminate, expires_at: now + REVOCATION_KEPT };
        self.revocations.revoke(&revocation).await.map_err(|source| self.backend_error(source))?;
        let stored = self.backend.get(&self.id).await.map_err(|source| self.backend_error(source))?;
        let running = stored.is_some_and(|r| matches!(r.status, State::Started | State::Progress));
        if !running {
            let error = TaskError::of_kind(TaskErrorKind::Revoked, "revoked");
            let revoked = TaskResult::failure(&self.id, &error, now);
            self.backend.store(&revoked, None).await.map_err(|source| self.backend_error(source))?;
        }
        Ok(())
    }

    fn backend_error(&self, source: BrokerError) -> ResultError {
        ResultError::Backend { id: self.id.clone(), source }
    }
}

impl<T: DeserializeOwned> AsyncResult<T> {
    /// Waits up to `timeout` for the value; a failed task's error is returned as `Err`.
    pub async fn get(&self, timeout: Duration) -> Result<T, ResultError> {
        let id = self.id.clone();
        let result = self.backend.wait(&self.id, timeout).await.map_err(|source| match source.kind() {
            BrokerErrorKind::Timeout => ResultError::Timeout { id: id.clone(), timeout },
            _ => ResultError::Backend { id: id.clone(), source },
        })?;
        let value = result.outcome().map_err(|error| ResultError::Task { id: id.clone(), error })?;
        serde_json::from_value(value).map_err(|source| ResultError::Decode { id, source })
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult").field("id", &self.id).finish()
    }
}
