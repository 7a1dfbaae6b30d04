//! One item's call, in this process or on workers, with the shared rate, retries with
//! backoff and jitter, and the per-call time limit.
//!
//! On workers (`--broker`), attempt `a` of item `i` is task `{run}-{i}` (`{run}-{i}.{a}`
//! for retries): the run id is kept next to the output, so a resumed run finds the
//! results its predecessor's calls left in the backend and reuses them instead of
//! calling again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use artel_core::{Arguments, Backoff, Context, Handler, Signature, TaskError, TaskErrorKind};
use clap::ValueEnum;
use governor::DefaultDirectRateLimiter;
use serde_json::{Map, Value};

use super::input::Template;
use super::output::Outcome;
use crate::{App, ResultHub};

/// Which failures `--retries` retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RetryOn {
    /// The task returned an error or panicked, or its message could not be sent.
    Error,
    /// The call ran past --timeout.
    Timeout,
    /// Its worker died while running it (deliveries exhausted).
    Lost,
}

impl RetryOn {
    /// The kind of failure `error` is, if it is one that may be retried at all: wrong
    /// arguments, unknown tasks and revocations end the same way every time.
    fn of(error: &TaskError) -> Option<Self> {
        match error.kind() {
            TaskErrorKind::Failed | TaskErrorKind::Panicked | TaskErrorKind::Retry => Some(Self::Error),
            TaskErrorKind::TimedOut => Some(Self::Timeout),
            TaskErrorKind::WorkerLost => Some(Self::Lost),
            _ => None,
        }
    }
}

/// Where the calls run.
pub(crate) enum Runner {
    /// In this process's pool.
    Local(Arc<dyn Handler>),
    /// On workers, through a broker.
    Remote(Box<Remote>),
}

/// The calls' broker, where their results are waited for, and how their ids are made.
pub(crate) struct Remote {
    pub(crate) app: App,
    pub(crate) hub: ResultHub,
    /// What this run's task ids start with.
    pub(crate) run: String,
    /// Whether a previous run may have left results under these ids (`--resume`).
    pub(crate) reuse: bool,
}

/// What every call shares.
pub(crate) struct Plan {
    pub(crate) runner: Runner,
    pub(crate) task: String,
    pub(crate) args: Option<Template>,
    pub(crate) kwargs: Option<Template>,
    pub(crate) rate: Option<DefaultDirectRateLimiter>,
    pub(crate) retries: u32,
    pub(crate) retry_on: Vec<RetryOn>,
    pub(crate) backoff: Backoff,
    pub(crate) timeout: Option<Duration>,
}

impl Plan {
    /// The call's arguments from `item`.
    fn arguments(&self, item: &Value) -> Result<(Vec<Value>, Map<String, Value>), String> {
        let args = match &self.args {
            Some(template) => match template.fill(item)? {
                Value::Array(args) => args,
                other => vec![other],
            },
            None if self.kwargs.is_some() => Vec::new(),
            None => vec![item.clone()],
        };
        let kwargs = match &self.kwargs {
            Some(template) => match template.fill(item)? {
                Value::Object(kwargs) => kwargs,
                other => return Err(format!("--kwargs must make an object, it made {other}")),
            },
            None => Map::new(),
        };
        Ok((args, kwargs))
    }

    /// Calls the task for item `index`, retrying as asked.
    pub(crate) async fn call(&self, index: u64, item: Result<Value, String>) -> Outcome {
        let started = Instant::now();
        let (input, prepared) = match item {
            Ok(item) => {
                let prepared = self.arguments(&item);
                (item, prepared)
            }
            Err(error) => (Value::Null, Err(error)),
        };
        let mut attempts = 0;
        let result = match prepared {
            Err(error) => Err(error),
            Ok((args, kwargs)) => loop {
                attempts += 1;
                if let Some(rate) = &self.rate {
                    rate.until_ready().await;
                }
                match self.attempt(index, attempts, args.clone(), kwargs.clone()).await {
                    Ok(value) => break Ok(value),
                    Err(error) if attempts <= self.retries && self.retryable(&error) => {
                        tokio::time::sleep(self.backoff.delay(attempts, fastrand::f64())).await;
                    }
                    Err(error) => break Err(error.to_string()),
                }
            },
        };
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Outcome { index, input, result, attempts, ms }
    }

    fn retryable(&self, error: &TaskError) -> bool {
        RetryOn::of(error).is_some_and(|kind| self.retry_on.contains(&kind))
    }

    /// One attempt: here within the time limit, or on a worker (which enforces it).
    async fn attempt(
        &self,
        index: u64,
        attempt: u32,
        args: Vec<Value>,
        kwargs: Map<String, Value>,
    ) -> Result<Value, TaskError> {
        match &self.runner {
            Runner::Local(handler) => {
                let ctx = Context::detached(format!("map-{index}-{attempt}"), self.task.clone());
                let call = handler.call(Arguments::new(args, kwargs), ctx);
                match self.timeout {
                    Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                        Err(TaskError::of_kind(TaskErrorKind::TimedOut, format!("no answer within {limit:?}")))
                    }),
                    None => call.await,
                }
            }
            // Boxed: the local calls' futures, thousands at once, stay small.
            Runner::Remote(remote) => {
                let call = Signature::new(&self.task).with_args(args);
                Box::pin(remote.attempt(index, attempt, call, kwargs, self.timeout)).await
            }
        }
    }
}

impl Remote {
    /// Attempt `attempt` of item `index` on a worker, or the result a previous run left.
    async fn attempt(
        &self,
        index: u64,
        attempt: u32,
        mut call: Signature,
        kwargs: Map<String, Value>,
        timeout: Option<Duration>,
    ) -> Result<Value, TaskError> {
        let run = &self.run;
        let id = if attempt == 1 { format!("{run}-{index}") } else { format!("{run}-{index}.{attempt}") };
        let stored = match self.reuse {
            true => self.app.backend().results().get(&id).await.ok().flatten().filter(|r| r.status.is_ready()),
            false => None,
        };
        let result = match stored {
            Some(result) => result,
            None => {
                call.kwargs = kwargs;
                call.options.time_limit = timeout;
                self.app.send(call.task_id(id.clone())).await.map_err(|e| TaskError::msg(e.to_string()))?;
                self.hub.wait(id).await.map_err(|e| TaskError::msg(format!("cannot read the result: {e}")))?
            }
        };
        result.outcome()
    }
}
