//! What the dispatcher reports as it handles a message: a `task` span per message in the
//! message's trace (W3C `traceparent`, continued by what the run publishes), the
//! worker's counters ([`artel_core::worker::WorkerStats`]) and, when one is set, a
//! [`TaskObserver`] (metrics). Labels are the registered task name (`unregistered`
//! otherwise: a publisher cannot grow the label set) and the queue.

use std::sync::atomic::Ordering;
use std::time::Duration;

use artel_core::worker::{Outcome, TaskObserver};
use artel_core::{Delivery, Message, TraceContext};
use tracing::Instrument;

use crate::canvas;
use crate::execute::Dispatcher;

impl Dispatcher {
    /// Handles `delivery` in a `task` span (task, id, trace id: [`TraceContext::of_run`])
    /// so logs inside the run carry them; the run's context is derived once and handed to
    /// [`Dispatcher::execute`]. Few fields, formatted without allocating: this runs for
    /// every message.
    pub(crate) async fn handle(&self, delivery: Delivery) {
        let message = delivery.message();
        let run = TraceContext::of_run(&message.headers);
        let span = tracing::info_span!(
            "task",
            task = %message.headers.task,
            id = %message.headers.id,
            trace_id = %run.trace_display(),
        );
        self.execute(delivery, run).instrument(span).await;
    }

    fn observer(&self) -> Option<&dyn TaskObserver> {
        self.observer.as_deref()
    }

    /// The task and queue labels of `message`.
    fn labels<'m>(&self, message: &'m Message) -> (&'m str, &'m str) {
        let task = message.headers.task.as_str();
        let known = self.registry.get(task).is_some() || canvas::builtin(task, &self.registry).is_some();
        let queue = match message.queue() {
            "" => artel_core::DEFAULT_QUEUE,
            queue => queue,
        };
        (if known { task } else { "unregistered" }, queue)
    }

    /// A message was taken (its `deliveries`-th delivery; 0 when the broker does not count).
    pub(crate) fn received(&self, message: &Message, deliveries: u32) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        if let Some(observer) = self.observer() {
            let (task, queue) = self.labels(message);
            observer.received(task, queue, deliveries > 1);
        }
    }

    /// A run of `message` begins: how long it waited since it was published or due.
    pub(crate) fn started(&self, message: &Message) {
        let Some(observer) = self.observer() else { return };
        let sent = message.headers.sent_ms();
        let due = message.headers.eta.map(|eta| eta.timestamp_millis());
        let since = match (sent, due) {
            (Some(sent), Some(due)) => Some(sent.max(due)),
            (sent, due) => sent.or(due),
        };
        let waited = since.map(|since| {
            let ms = self.clock.now().timestamp_millis().saturating_sub(since);
            Duration::from_millis(u64::try_from(ms).unwrap_or(0))
        });
        let (task, queue) = self.labels(message);
        observer.started(task, queue, waited);
    }

    /// A run of `message` ended after `runtime`.
    pub(crate) fn ran(&self, message: &Message, runtime: Duration) {
        self.stats.record(&message.headers.task, runtime);
        if let Some(observer) = self.observer() {
            let (task, queue) = self.labels(message);
            observer.ran(task, queue, runtime);
        }
    }

    /// `message` was settled with `outcome`.
    pub(crate) fn settled(&self, message: &Message, outcome: Outcome) {
        let counter = match outcome {
            // A cached answer is a success to its caller; the metric's label tells them apart.
            Outcome::Succeeded | Outcome::Cached => Some(&self.stats.succeeded),
            Outcome::Failed => Some(&self.stats.failed),
            Outcome::Retried => Some(&self.stats.retried),
            Outcome::DeadLettered => Some(&self.stats.rejected),
            Outcome::Expired => Some(&self.stats.expired),
            Outcome::Revoked => Some(&self.stats.revoked),
            Outcome::Deferred | Outcome::HandedBack | Outcome::Ignored => None,
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(observer) = self.observer() {
            let (task, queue) = self.labels(message);
            observer.finished(task, queue, outcome);
        }
    }
}
