//! [`Context`]: what a running task knows about itself and may tell the world.
//!
//! A task asks for it by taking a `ctx: Context` parameter (Celery's `bind=True`). It
//! carries the ids of the call, the retry count, a cancellation signal (soft time limit,
//! hard time limit, revoke with terminate) and a way to publish progress.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::error::{TaskError, TaskErrorKind};
use crate::message::Headers;
use crate::result::TaskResult;
use crate::results::ResultBackend;
use crate::state::State;

/// Why a running task is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cancelled {
    /// The soft time limit passed: clean up and return (or return the error of `check`).
    SoftTimeLimit,
    /// The hard time limit passed: the worker has abandoned the task.
    HardTimeLimit,
    /// The task was revoked with `terminate`.
    Revoked,
    /// The worker is stopping now (cold stop, or the end of a warm stop's grace): the run
    /// is dropped and its message handed back to the queue.
    WorkerStopped,
}

/// The running task's view of itself; cheap to clone.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

/// Who the running call is.
#[derive(Default)]
struct Ids {
    id: String,
    task: String,
    retries: u32,
    root_id: Option<String>,
    parent_id: Option<String>,
    group: Option<String>,
}

struct Inner {
    ids: Ids,
    cancel: CancellationToken,
    reason: OnceLock<Cancelled>,
    results: Option<(Arc<dyn ResultBackend>, Option<Duration>)>,
    /// How many threads that the worker cannot stop still run this call's body; made by
    /// the first `blocking` run, so async calls never pay for it.
    unstoppable: OnceLock<tokio::sync::watch::Sender<usize>>,
}

/// Held while a thread the worker cannot stop runs a call's body (see
/// [`Context::unstoppable`]); dropping it says the thread is done.
#[derive(Debug)]
pub struct Unstoppable(tokio::sync::watch::Sender<usize>);

impl Drop for Unstoppable {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Context {
    /// A context for calling a task body directly (tests, `task::call`): it is never
    /// cancelled unless [`Context::cancel`] is called, and progress goes nowhere.
    pub fn detached(id: impl Into<String>, task: impl Into<String>) -> Self {
        Self::build(Ids { id: id.into(), task: task.into(), ..Ids::default() }, None)
    }

    /// The context of a delivered message; progress is stored in `results` (with its TTL).
    pub fn for_message(headers: &Headers, results: Option<(Arc<dyn ResultBackend>, Option<Duration>)>) -> Self {
        let ids = Ids {
            id: headers.id.clone(),
            task: headers.task.clone(),
            retries: headers.retries,
            root_id: headers.root_id.clone(),
            parent_id: headers.parent_id.clone(),
            group: headers.group.clone(),
        };
        Self::build(ids, results)
    }

    fn build(ids: Ids, results: Option<(Arc<dyn ResultBackend>, Option<Duration>)>) -> Self {
        let (cancel, reason) = (CancellationToken::new(), OnceLock::new());
        Self { inner: Arc::new(Inner { ids, cancel, reason, results, unstoppable: OnceLock::new() }) }
    }

    /// This call's task id (also its result key).
    pub fn id(&self) -> &str {
        &self.inner.ids.id
    }

    /// The registered task name.
    pub fn task(&self) -> &str {
        &self.inner.ids.task
    }

    /// How many times this call was already retried (0 on the first run).
    pub fn retries(&self) -> u32 {
        self.inner.ids.retries
    }

    /// The first task of the workflow this call belongs to.
    pub fn root_id(&self) -> Option<&str> {
        self.inner.ids.root_id.as_deref()
    }

    /// The task that published this one (a chain's previous step, a retried original).
    pub fn parent_id(&self) -> Option<&str> {
        self.inner.ids.parent_id.as_deref()
    }

    /// The group or chord this call is a member of.
    pub fn group(&self) -> Option<&str> {
        self.inner.ids.group.as_deref()
    }

    /// Asks the worker to run this task again (Celery's `self.retry()`); return it as the
    /// task's error. Set a countdown with [`TaskError::after`].
    pub fn retry(&self, reason: impl fmt::Display) -> TaskError {
        TaskError::retry(reason)
    }

    /// Signals the task to stop; the worker calls this at the soft or hard time limit and
    /// on revoke with terminate. The first reason sticks.
    pub fn cancel(&self, why: Cancelled) {
        let _ = self.inner.reason.set(why);
        self.inner.cancel.cancel();
    }

    /// Marks that a thread the worker cannot stop (a `blocking` task's) runs this call
    /// until the returned guard drops. A worker that stops does not hand such a call's
    /// message back while the thread runs, so it never runs twice at once.
    pub fn unstoppable(&self) -> Unstoppable {
        let threads = self.inner.unstoppable.get_or_init(|| tokio::sync::watch::Sender::new(0));
        threads.send_modify(|n| *n += 1);
        Unstoppable(threads.clone())
    }

    /// Whether a thread the worker cannot stop still runs this call.
    pub fn runs_unstoppably(&self) -> bool {
        self.inner.unstoppable.get().is_some_and(|threads| *threads.borrow() > 0)
    }

    /// Completes once no thread the worker cannot stop runs this call (at once if none).
    pub async fn stoppable(&self) {
        let Some(threads) = self.inner.unstoppable.get() else { return };
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = threads.subscribe().wait_for(|n| *n == 0).await;
    }

    /// Whether the task has been asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Why the task was asked to stop, if it was.
    pub fn cancel_reason(&self) -> Option<Cancelled> {
        self.inner.reason.get().copied()
    }

    /// Completes when the task is asked to stop; `select!` on it beside long awaits.
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await;
    }

    /// `Ok` while the task may go on; the error to return once it was asked to stop
    /// (`TimedOut` for time limits, `Revoked` for revoke), for use with `?`.
    pub fn check(&self) -> Result<(), TaskError> {
        match self.cancel_reason() {
            None => Ok(()),
            Some(Cancelled::Revoked) => Err(TaskError::of_kind(TaskErrorKind::Revoked, "terminated")),
            Some(Cancelled::SoftTimeLimit) => {
                Err(TaskError::of_kind(TaskErrorKind::TimedOut, "soft time limit exceeded"))
            }
            Some(Cancelled::HardTimeLimit) => {
                Err(TaskError::of_kind(TaskErrorKind::TimedOut, "hard time limit exceeded"))
            }
            Some(Cancelled::WorkerStopped) => Err(TaskError::msg("the worker is stopping; the task will run again")),
        }
    }

    /// Stores a non-final `state` with `meta` (Celery's `update_state`), readable by the
    /// client with `AsyncResult::info`. A detached context stores nothing.
    pub async fn update_state(&self, state: State, meta: Value) -> Result<(), TaskError> {
        if state.is_ready() {
            return Err(TaskError::msg(format!(
                "update_state({}) would finish the task; return its value or error instead",
                state.as_str()
            )));
        }
        let Some((backend, ttl)) = &self.inner.results else { return Ok(()) };
        let result = TaskResult::progress(&self.inner.ids.id, state, meta);
        backend
            .store(&result, *ttl)
            .await
            .map(drop)
            .map_err(|e| TaskError::msg(format!("could not store the progress of task {}: {e}", self.inner.ids.id)))
    }

    /// Stores PROGRESS with `meta` (e.g. `{"done": 40, "total": 100}`).
    pub async fn progress(&self, meta: Value) -> Result<(), TaskError> {
        self.update_state(State::Progress, meta).await
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.inner.ids.id)
            .field("task", &self.inner.ids.task)
            .field("retries", &self.inner.ids.retries)
            .field("cancelled", &self.cancel_reason())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TaskErrorKind;

    #[test]
    fn the_first_cancel_reason_sticks_and_check_names_it() {
        let ctx = Context::detached("id-1", "t");
        assert!(ctx.check().is_ok());
        ctx.cancel(Cancelled::SoftTimeLimit);
        ctx.cancel(Cancelled::Revoked);
        assert_eq!(ctx.cancel_reason(), Some(Cancelled::SoftTimeLimit));
        let error = ctx.check().expect_err("cancelled");
        assert_eq!(error.kind(), TaskErrorKind::TimedOut);
        assert_eq!(error.message(), "soft time limit exceeded");
    }

    #[tokio::test]
    async fn a_call_is_stoppable_once_its_unstoppable_threads_end() {
        let ctx = Context::detached("id-3", "t");
        assert!(!ctx.runs_unstoppably());
        ctx.stoppable().await;
        let thread = ctx.unstoppable();
        assert!(ctx.runs_unstoppably());
        let waiter = tokio::spawn({
            let ctx = ctx.clone();
            async move { ctx.stoppable().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits while the thread runs");
        drop(thread);
        tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("woken").expect("joined");
        assert!(!ctx.runs_unstoppably());
    }

    #[tokio::test]
    async fn a_final_state_cannot_be_set_as_progress() {
        let ctx = Context::detached("id-2", "t");
        let error = ctx.update_state(State::Success, Value::Null).await.expect_err("refused");
        assert!(error.message().contains("would finish the task"), "{error}");
        ctx.progress(serde_json::json!({"done": 1})).await.expect("detached progress goes nowhere");
    }
}
