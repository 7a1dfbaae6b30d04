//! Running a task body under its time limits, revoke-with-terminate and the worker's stop.
//!
//! Soft limit: the task's [`Context`] is cancelled and the task may clean up and return.
//! Hard limit, terminate or the worker's stop: the worker stops waiting and drops the
//! task's future; an async task stops at its next await, a blocking task's thread is
//! abandoned (its result is discarded) and a child process started with `kill_on_drop`
//! is killed. By the time [`supervise`] returns, the future is dropped.

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

/// How a supervised run ended.
#[derive(Debug)]
pub(crate) enum Run {
    /// The task returned, panicked, hit its hard limit or was terminated.
    Ended(Result<Value, TaskError>),
    /// The worker stopped it: the task did not finish and should run again.
    Stopped,
}

/// Runs `task` to completion, a hard limit, `terminate` or `stop`; a panic becomes an error.
pub(crate) async fn supervise(
    task: BoxFuture<'static, Result<Value, TaskError>>,
    ctx: &Context,
    limits: Limits,
    terminate: &CancellationToken,
    stop: &CancellationToken,
) -> Run {
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
                return Run::Ended(outcome.unwrap_or_else(|panic| {
                    let error = TaskError::of_kind(TaskErrorKind::Panicked, panic);
                    Err(match artel_pool::last_panic_location() {
                        Some(at) => error.with_traceback(at),
                        None => error,
                    })
                }));
            }
            _ = stop.cancelled() => {
                ctx.cancel(Cancelled::WorkerStopped);
                return Run::Stopped;
            }
            _ = terminate.cancelled() => {
                ctx.cancel(Cancelled::Revoked);
                return Run::Ended(Err(TaskError::of_kind(TaskErrorKind::Revoked, "terminated")));
            }
            _ = &mut hard, if limits.hard.is_some() => {
                ctx.cancel(Cancelled::HardTimeLimit);
                let limit = limits.hard.unwrap_or_default();
                let error = TaskError::of_kind(TaskErrorKind::TimedOut, format!("hard time limit ({limit:?}) exceeded"));
                return Run::Ended(Err(error));
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

    fn ended(run: Run) -> Result<Value, TaskError> {
        match run {
            Run::Ended(outcome) => outcome,
            Run::Stopped => panic!("the run was not stopped by the worker"),
        }
    }

    #[tokio::test]
    async fn a_panic_is_a_failure_whose_traceback_says_where_it_happened() {
        let ctx = Context::detached("t5", "broken");
        let task: BoxFuture<'static, Result<Value, TaskError>> = Box::pin(async { panic!("index out of range") });
        let no = CancellationToken::new();
        let error = ended(supervise(task, &ctx, Limits::default(), &no, &no).await).expect_err("panicked");
        assert_eq!((error.kind(), error.message()), (TaskErrorKind::Panicked, "index out of range"));
        let traceback = error.traced().traceback().map(str::to_owned).unwrap_or_default();
        assert!(traceback.starts_with("panicked at crates/artel-runtime/src/supervise.rs:"), "{traceback}");
        assert!(traceback.ends_with("index out of range"), "ends as Python's: ExcType: message\n{traceback}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_workers_stop_drops_the_task_before_returning() {
        let ctx = Context::detached("t4", "long");
        let (stop, dropped) =
            (CancellationToken::new(), std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)));
        struct OnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let guard = OnDrop(dropped.clone());
        let task: BoxFuture<'static, _> = Box::pin(async move {
            let _guard = guard;
            std::future::pending::<Result<Value, TaskError>>().await
        });
        let stopper = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stopper.cancel();
        });
        let run = supervise(task, &ctx, Limits::default(), &CancellationToken::new(), &stop).await;
        assert!(matches!(run, Run::Stopped), "{run:?}");
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst), "the future is gone when supervise returns");
        assert_eq!(ctx.cancel_reason(), Some(Cancelled::WorkerStopped));
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
        let out = ended(supervise(task, &ctx, limits, &CancellationToken::new(), &CancellationToken::new()).await);
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
        let run = supervise(task, &ctx, limits, &CancellationToken::new(), &CancellationToken::new()).await;
        let error = ended(run).expect_err("aborted");
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
        let run = supervise(task, &ctx, Limits::default(), &terminate, &CancellationToken::new()).await;
        let error = ended(run).expect_err("terminated");
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
