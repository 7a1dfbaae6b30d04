//! Retrying a failed task: a durable re-publish with an ETA, never a sleep in the worker.
//!
//! Like Celery's `self.retry()`: the same task id is published again with `retries + 1`
//! and an `eta`, RETRY is stored (readable by the client), and the original message is
//! acknowledged. Past `max_retries` the task fails with its last error.

use std::time::Duration;

use artel_core::{
    Backoff, Delivery, State, TaskError, TaskErrorKind, TaskOptions, TaskResult, result::encode_exception,
};

use crate::execute::{Executor, settle};

/// Celery's default `max_retries`.
const DEFAULT_MAX_RETRIES: u32 = 3;

/// Whether this error asks for another attempt under the task's options: explicit
/// retries always; failures and time-outs when the task declares `autoretry`.
pub(crate) fn wanted(error: &TaskError, options: &TaskOptions) -> bool {
    match error.kind() {
        TaskErrorKind::Retry => true,
        TaskErrorKind::Failed | TaskErrorKind::TimedOut => options.autoretry == Some(true),
        _ => false,
    }
}

impl Executor {
    /// Schedules another attempt and settles the message (`None`), or hands back the
    /// delivery and error when no retries are left, for the caller to record the failure.
    pub(crate) async fn retry(
        &self,
        delivery: Delivery,
        id: &str,
        error: TaskError,
        options: &TaskOptions,
    ) -> Option<(Delivery, TaskError)> {
        let max = options.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
        let next = delivery.message().headers.retries + 1;
        if next > max {
            let error = error.with_traceback(format!("gave up after {max} retries"));
            return Some((delivery, error));
        }
        let backoff =
            Backoff { multiplier: options.retry_backoff.unwrap_or(Duration::from_secs(1)), ..Backoff::default() };
        let countdown = error.retry_after().unwrap_or_else(|| backoff.delay(next, fastrand::f64()));
        let now = self.clock.now();
        let mut message = delivery.message().clone();
        message.headers.retries = next;
        message.headers.eta = Some(artel_core::time::after(now, countdown));
        message.headers.parent_id.get_or_insert_with(|| id.to_owned());
        message.properties.delivery_tag = Some(uuid::Uuid::new_v4().to_string());
        let queue = match message.queue() {
            "" => artel_core::DEFAULT_QUEUE.to_owned(),
            routed => routed.to_owned(),
        };
        if let Err(e) = self.broker.publish(&queue, std::slice::from_ref(&message)).await {
            // Cannot schedule the retry: run it again now rather than lose it.
            tracing::error!(id = %id, error = %e, "could not publish the retry; the message goes back to the queue");
            settle(delivery.requeue().await, id);
            return None;
        }
        let state = TaskResult::progress(id, State::Retry, encode_exception(&error));
        if let Err(e) = self.backend.store(&state, self.result_ttl).await {
            tracing::warn!(id = %id, error = %e, "could not store the RETRY state");
        }
        self.stats.retried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.event("task-retried", || {
            let traceback = error.traceback().unwrap_or_default();
            serde_json::json!({"uuid": id, "exception": crate::events::exception_repr(&error), "traceback": traceback})
        });
        let task = &message.headers.task;
        tracing::info!(%task, %id, retry = next, of = max, ?countdown, %error, "retried");
        settle(delivery.ack().await, id);
        None
    }
}
