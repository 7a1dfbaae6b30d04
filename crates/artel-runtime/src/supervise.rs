//! Running a task body under its time limits and revoke-with-terminate.
//!
//! Soft limit: the task's [`Context`] is cancelled and the task may clean up and return.
//! Hard limit or terminate: the worker stops waiting and drops the task's future; an
//! async task stops at its next await, a blocking task's thread is abandoned (its result
//! is discarded) and a child process started with `kill_on_drop` is killed.

use std::time::Duration;

use artel_core::{BoxFuture, Cancelled, Context, Headers, TaskError, TaskErrorKind, TaskOptions};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The time limits of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Limits {
    pub(crate) soft: Option<Duration>,
    pub(crate) hard: Option<Duration>,
}

impl Limits {
    /// The call's limits (message header) over the task's declared ones over the worker's.
    pub(crate) fn of(headers: &Headers, options: &TaskOptions, worker: Limits) -> Self {
        let secs = |s: Option<f64>| s.and_then(|s| Duration::try_from_secs_f64(s).ok());
        Self {
            hard: secs(headers.timelimit.0).or(options.time_limit).or(worker.hard),
            soft: secs(headers.timelimit.1).or(options.soft_time_limit).or(worker.soft),
        }
    }
}

/// Runs `task` to completion, a hard limit, or `terminate`; a panic becomes an error.
pub(crate) async fn supervise(
    task: BoxFuture<'static, Result<Value, TaskError>>,
    ctx: &Context,
    limits: Limits,
    terminate: &CancellationToken,
) -> Result<Value, TaskError> {
    let run = artel_pool::catch_unwind(task);
    tokio::pin!(run);
    let start = Instant::now();
    let soft = tokio::time::sleep_until(start + limits.soft.unwrap_or_default());
    let hard = tokio::time::sleep_until(start + limits.hard.unwrap_or_default());
    tokio::pin!(soft, hard);
    let mut soft_pending = limits.soft.is_some();
    loop {
        tokio::select! {
            biased;
            outcome = &mut run => {
                return outcome.unwrap_or_else(|panic| Err(TaskError::of_kind(TaskErrorKind::Panicked, panic)));
            }
            _ = terminate.cancelled() => {
                ctx.cancel(Cancelled::Revoked);
                return Err(TaskError::of_kind(TaskErrorKind::Revoked, "terminated"));
            }
            _ = &mut hard, if limits.hard.is_some() => {
                ctx.cancel(Cancelled::HardTimeLimit);
                let limit = limits.hard.unwrap_or_default();
                return Err(TaskError::of_kind(TaskErrorKind::TimedOut, format!("hard time limit ({limit:?}) exceeded")));
            }
            _ = &mut soft, if soft_pending => {
                soft_pending = false;
                ctx.cancel(Cancelled::SoftTimeLimit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[tokio::test(start_paused = true)]
    async fn the_soft_limit_cancels_the_context_and_the_task_may_finish() {
        let ctx = Context::detached("t1", "cleanup");
        let seen = ctx.clone();
        let task: BoxFuture<'static, _> = Box::pin(async move {
            seen.cancelled().await;
            Ok(Value::from(format!("{:?}", seen.cancel_reason())))
        });
        let limits = Limits { soft: ms(100), hard: ms(1_000) };
        let out = supervise(task, &ctx, limits, &CancellationToken::new()).await;
        assert_eq!(out.expect("finished after cleaning up"), Value::from("Some(SoftTimeLimit)"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_hard_limit_abandons_a_task_that_ignores_the_soft_one() {
        let ctx = Context::detached("t2", "stubborn");
        let task: BoxFuture<'static, _> = Box::pin(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Value::Null)
        });
        let limits = Limits { soft: ms(100), hard: ms(200) };
        let error = supervise(task, &ctx, limits, &CancellationToken::new()).await.expect_err("aborted");
        assert_eq!(error.kind(), TaskErrorKind::TimedOut);
        assert_eq!(ctx.cancel_reason(), Some(Cancelled::SoftTimeLimit), "the soft limit came first");
    }

    #[tokio::test(start_paused = true)]
    async fn terminate_stops_the_task_as_revoked() {
        let ctx = Context::detached("t3", "long");
        let terminate = CancellationToken::new();
        let task: BoxFuture<'static, _> = Box::pin(std::future::pending());
        let stop = terminate.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stop.cancel();
        });
        let error = supervise(task, &ctx, Limits::default(), &terminate).await.expect_err("terminated");
        assert_eq!((error.kind(), ctx.cancel_reason()), (TaskErrorKind::Revoked, Some(Cancelled::Revoked)));
    }

    #[test]
    fn a_calls_limits_override_the_tasks_which_override_the_workers() {
        let mut headers: Headers =
            serde_json::from_value(serde_json::json!({"task": "t", "id": "1"})).expect("headers");
        let options = TaskOptions { soft_time_limit: ms(20), time_limit: ms(30), ..TaskOptions::default() };
        let worker = Limits { soft: ms(1), hard: ms(2) };
        assert_eq!(Limits::of(&headers, &TaskOptions::default(), worker), worker);
        assert_eq!(Limits::of(&headers, &options, worker), Limits { soft: ms(20), hard: ms(30) });
        headers.timelimit = (Some(4.0), None);
        assert_eq!(Limits::of(&headers, &options, worker), Limits { soft: ms(20), hard: ms(4_000) });
    }
}
