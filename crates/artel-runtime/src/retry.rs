//! Retrying a failed task: a durable re-publish with an ETA, never a sleep in the worker.
//!
//! Like Celery's `self.retry()`: the same task id is published again with `retries + 1`
//! and an `eta`, RETRY is stored (readable by the client), and the original message is
//! acknowledged. Past `max_retries` the task fails with its last error.

use std::time::Duration;

use artel_core::{
    Backoff, Delivery, Message, State, TaskError, TaskErrorKind, TaskOptions, TaskResult, result::encode_exception,
};

use crate::execute::{Dispatcher, settle};

/// Celery's default `max_retries`.
const DEFAULT_MAX_RETRIES: u32 = 3;

/// What becomes of a run that ended in an error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Decision {
    /// Not an error to retry: the task fails.
    Fail,
    /// A retry was wanted but `max` retries are used up: the task fails.
    GiveUp {
        /// The task's `max_retries`.
        max: u32,
    },
    /// Run it again as attempt `retry` (1 = the first retry) after `countdown`.
    Retry {
        /// The retry count the new message carries.
        retry: u32,
        /// How long until it runs.
        countdown: Duration,
    },
}

/// The decision for `error` after `retries` earlier retries under the task's options:
/// explicit retries always want another attempt, failures and time-outs when the task
/// declares `autoretry`; the delay is the error's own (`retry().after(...)`) or the
/// backoff's for `jitter` (0..1).
pub(crate) fn decide(error: &TaskError, options: &TaskOptions, retries: u32, jitter: f64) -> Decision {
    let wanted = match error.kind() {
        TaskErrorKind::Retry => true,
        TaskErrorKind::Failed | TaskErrorKind::TimedOut => options.autoretry == Some(true),
        _ => false,
    };
    if !wanted {
        return Decision::Fail;
    }
    let max = options.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
    let Some(retry) = retries.checked_add(1).filter(|retry| *retry <= max) else {
        return Decision::GiveUp { max };
    };
    let backoff = Backoff { multiplier: options.retry_backoff.unwrap_or(Duration::from_secs(1)), ..Backoff::default() };
    Decision::Retry { retry, countdown: error.retry_after().unwrap_or_else(|| backoff.delay(retry, jitter)) }
}

impl Dispatcher {
    /// Stores RETRY, then publishes attempt `next` to run after `countdown` and settles
    /// the message; if the retry cannot be published, the message goes back to the queue
    /// (and runs again now).
    ///
    /// RETRY and its event come first: once attempt `next` is published it may run and
    /// finish at once, and its SUCCESS must not be followed by this attempt's RETRY.
    pub(crate) async fn retry(&self, delivery: Delivery, id: &str, error: TaskError, next: u32, countdown: Duration) {
        let task = delivery.message().headers.task.clone();
        self.settled(delivery.message(), artel_core::worker::Outcome::Retried);
        let state = TaskResult::progress(id, State::Retry, encode_exception(&error));
        if let Err(e) = self.backend.store(&state, self.result_ttl).await {
            tracing::warn!(id = %id, error = %e, "could not store the RETRY state");
        }
        self.event(|| artel_core::TaskEvent::Retried { id: id.to_owned(), error: error.clone() });
        let republished = self.republish(delivery, id, countdown, |message| {
            message.headers.retries = next;
            message.headers.parent_id.get_or_insert_with(|| id.to_owned());
        });
        if republished.await {
            tracing::info!(%task, %id, retry = next, ?countdown, %error, "retried");
        }
    }

    /// Publishes the message again (as `edit` changes it) to run after `countdown`, then
    /// acks the delivery; when it cannot be published, hands the delivery back to the
    /// queue instead (it runs again now rather than being lost). Whether it was published.
    pub(crate) async fn republish(
        &self,
        delivery: Delivery,
        id: &str,
        countdown: Duration,
        edit: impl FnOnce(&mut Message),
    ) -> bool {
        let mut message = delivery.message().clone();
        edit(&mut message);
        message.headers.eta = Some(artel_core::time::after(self.clock.now(), countdown));
        message.properties.delivery_tag = Some(uuid::Uuid::new_v4().to_string());
        let queue = match message.queue() {
            "" => artel_core::DEFAULT_QUEUE.to_owned(),
            routed => routed.to_owned(),
        };
        if let Err(e) = self.broker.publish(&queue, std::slice::from_ref(&message)).await {
            tracing::error!(id = %id, error = %e, "could not publish the message again; it goes back to the queue");
            settle(delivery.requeue().await, id);
            return false;
        }
        settle(delivery.ack().await, id);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(autoretry: bool, max_retries: Option<u32>) -> TaskOptions {
        TaskOptions { autoretry: Some(autoretry), max_retries, ..TaskOptions::default() }
    }

    #[test]
    fn which_errors_are_retried_how_often_and_when() {
        let retry = || TaskError::retry("busy");
        let later = || TaskError::retry("busy").after(Duration::from_secs(30));
        let failed = || TaskError::msg("boom");
        let timed_out = || TaskError::of_kind(TaskErrorKind::TimedOut, "too slow");
        let invalid = || TaskError::invalid_arguments("t", "bad");
        let second = Duration::from_secs(1);
        #[rustfmt::skip]
        let table: [(TaskError, TaskOptions, u32, Decision); 9] = [
            // error      options                  retries  decision
            (retry(),     options(false, None),    0, Decision::Retry { retry: 1, countdown: second }),
            (retry(),     options(false, None),    2, Decision::Retry { retry: 3, countdown: 4 * second }),
            (retry(),     options(false, None),    3, Decision::GiveUp { max: 3 }),
            (retry(),     options(false, Some(0)), 0, Decision::GiveUp { max: 0 }),
            (later(),     options(false, None),    1, Decision::Retry { retry: 2, countdown: 30 * second }),
            (failed(),    options(false, None),    0, Decision::Fail),
            (failed(),    options(true, Some(5)),  4, Decision::Retry { retry: 5, countdown: 16 * second }),
            (timed_out(), options(true, None),     0, Decision::Retry { retry: 1, countdown: second }),
            (invalid(),   options(true, None),     0, Decision::Fail),
        ];
        for (error, options, retries, expected) in table {
            // Full jitter at its top: the backoff's ceiling, 1 s doubling per retry.
            assert_eq!(decide(&error, &options, retries, 1.0), expected, "{error} after {retries} retries");
        }
    }

    #[test]
    fn retries_past_any_count_give_up_instead_of_overflowing() {
        let decision = decide(&TaskError::retry("busy"), &options(false, Some(u32::MAX)), u32::MAX, 0.5);
        assert_eq!(decision, Decision::GiveUp { max: u32::MAX });
    }
}
