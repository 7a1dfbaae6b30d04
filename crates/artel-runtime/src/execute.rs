//! Running one delivery: decode, look up, run under its limits, store, settle.
//!
//! Bad input never stops the worker: an undecodable message, an unknown task or
//! arguments of the wrong shape are dead-lettered with the reason, which is also stored
//! as a FAILURE result so the caller's `get()` sees it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use artel_core::{Arguments, Broker, Clock, Delivery, Registry, ResultBackend, TaskError, TaskErrorKind, TaskResult};
use serde_json::Value;

use crate::rate::RateLimits;
use crate::retry;
use crate::stats::WorkerStats;

/// What executing a delivery needs; shared by all in-flight tasks of a worker.
#[derive(Debug)]
pub(crate) struct Executor {
    pub(crate) registry: Arc<Registry>,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) backend: Arc<dyn ResultBackend>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) result_ttl: Option<Duration>,
    pub(crate) results_in_broker: bool,
    pub(crate) track_started: bool,
    pub(crate) stats: Arc<WorkerStats>,
    pub(crate) rate_limits: RateLimits,
}

impl Executor {
    pub(crate) async fn execute(&self, delivery: Delivery) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let headers = &delivery.message().headers;
        let (id, task) = (headers.id.clone(), headers.task.clone());
        let body = match delivery.message().decode_body() {
            Ok(body) => body,
            Err(e) => {
                let error = TaskError::of_kind(TaskErrorKind::InvalidMessage, e);
                return self.reject(delivery, &id, error).await;
            }
        };
        let Some(handler) = self.registry.get(&task).cloned() else {
            return self.reject(delivery, &id, TaskError::not_registered(&task)).await;
        };
        let now = self.clock.now();
        if headers.expires.is_some_and(|at| at <= now) {
            self.stats.expired.fetch_add(1, Ordering::Relaxed);
            let error = TaskError::of_kind(TaskErrorKind::Revoked, "expired");
            let ignore = headers.ignore_result;
            return self.complete(delivery, &id, TaskResult::failure(&id, &error, now), ignore).await;
        }
        let options = handler.options();
        self.rate_limits.wait(&task, options.rate_limit.as_deref()).await;
        let hard_limit = headers.timelimit.0.and_then(|s| Duration::try_from_secs_f64(s).ok());
        let ignore_result = headers.ignore_result;
        if self.track_started && !ignore_result {
            let meta = serde_json::json!({"pid": std::process::id(), "hostname": crate::hostname()});
            self.store(TaskResult::progress(&id, artel_core::State::Started, meta), false).await;
        }
        let run = artel_pool::catch_unwind(handler.call(Arguments::new(body.args, body.kwargs)));
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let outcome = match hard_limit {
            Some(limit) => tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
                Ok(Err(TaskError::of_kind(TaskErrorKind::TimedOut, format!("hard time limit ({limit:?}) exceeded"))))
            }),
            None => run.await,
        };
        self.stats.record(&task, started.elapsed());
        self.stats.active.fetch_sub(1, Ordering::Relaxed);
        let outcome = outcome.unwrap_or_else(|panic| Err(TaskError::of_kind(TaskErrorKind::Panicked, panic)));
        match outcome {
            Ok(value) => self.succeed(delivery, &id, value, ignore_result).await,
            Err(error) if error.kind() == TaskErrorKind::InvalidArguments => self.reject(delivery, &id, error).await,
            Err(error) if retry::wanted(&error, &options) => {
                if let Some((delivery, error)) = self.retry(delivery, &id, error, &options).await {
                    self.fail(delivery, &task, &id, error, ignore_result).await;
                }
            }
            Err(error) => self.fail(delivery, &task, &id, error, ignore_result).await,
        }
    }

    async fn fail(&self, delivery: Delivery, task: &str, id: &str, error: TaskError, ignore_result: bool) {
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(task = %task, id = %id, %error, "task failed");
        self.complete(delivery, id, TaskResult::failure(id, &error, self.clock.now()), ignore_result).await;
    }

    async fn succeed(&self, delivery: Delivery, id: &str, value: Value, ignore_result: bool) {
        self.stats.succeeded.fetch_add(1, Ordering::Relaxed);
        self.complete(delivery, id, TaskResult::success(id, value, self.clock.now()), ignore_result).await;
    }

    /// Records the outcome and settles the message: in one step when the broker holds the
    /// results too, else store, then ack.
    async fn complete(&self, delivery: Delivery, id: &str, result: TaskResult, ignore_result: bool) {
        if ignore_result {
            return settle(delivery.ack().await, id);
        }
        let delivery = if self.results_in_broker {
            match delivery.ack_with_result(&result, self.result_ttl).await {
                Ok(None) => return,
                Ok(Some(unsupported)) => unsupported,
                Err(e) => {
                    tracing::error!(id = %id, error = %e, "could not store the result; the message goes back to the queue");
                    return;
                }
            }
        } else {
            delivery
        };
        let stored = self.store(result, false).await;
        self.finish(delivery, id, stored).await;
    }

    /// Acks once the result is safely stored; otherwise hands the message back so the
    /// task runs again (at least once) rather than losing its result.
    async fn finish(&self, delivery: Delivery, id: &str, stored: bool) {
        if stored {
            settle(delivery.ack().await, id);
        } else {
            tracing::warn!(id = %id, "the result could not be stored; the message goes back to the queue to run again");
            settle(delivery.requeue().await, id);
        }
    }

    /// Dead-letters bad input with its reason and records the reason as the result.
    async fn reject(&self, delivery: Delivery, id: &str, error: TaskError) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::error!(id = %id, task = %delivery.message().headers.task, %error, "message rejected to dead letter");
        if !id.is_empty() {
            self.store(TaskResult::failure(id, &error, self.clock.now()), false).await;
        }
        settle(delivery.reject(&error.to_string()).await, id);
    }

    /// Stores a result (unless ignored); false when the backend failed.
    async fn store(&self, result: TaskResult, ignore_result: bool) -> bool {
        if ignore_result {
            return true;
        }
        match self.backend.store(&result, self.result_ttl).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(id = %result.task_id, error = %e, "could not store the task result");
                false
            }
        }
    }
}

pub(crate) fn settle(outcome: artel_core::BrokerResult<()>, id: &str) {
    if let Err(e) = outcome {
        // The broker redelivers an unsettled message once its lease lapses.
        tracing::error!(id = %id, error = %e, "could not acknowledge the message; it will be delivered again");
    }
}
