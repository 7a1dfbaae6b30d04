//! The task history a worker keeps in its backend ([`TaskHistory`]). The
//! [`HistoryRecorder`] only timestamps the worker's task events and queues them; the
//! [`HistoryWriter`] component folds them into task records and stores each task's latest
//! record every [`GATHER`] (a quick task's RECEIVED, STARTED and SUCCESS cost one write),
//! so the task path pays for a channel send, nothing more.
//!
//! History is for looking, never for correctness: when the store falls behind, events
//! are dropped (counted and logged) rather than slowing tasks down.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use artel_core::failed::FailedTask;
use artel_core::worker::{Component, ComponentError, Scope};
use artel_core::{Clock, EventSink, State, TaskEvent, TaskHistory, TaskRecord};
use async_trait::async_trait;
use tokio::sync::mpsc;

/// Events waiting to be folded at most; beyond, new ones are dropped.
const BACKLOG: usize = 32_768;

/// Events folded into one write at most.
const BATCH: usize = 8_192;

/// How long events gather between writes.
const GATHER: Duration = Duration::from_millis(100);

/// Tasks between RECEIVED and an outcome kept at most: more means outcomes were lost
/// (dropped events, hand-backs), and those older than [`STALE_MS`] are forgotten.
const OPEN_LIMIT: usize = 100_000;
const STALE_MS: i64 = 3_600_000;

/// A recorder and the writer that stores what it records in `store` as `worker`'s.
pub(crate) fn history(
    store: Arc<dyn TaskHistory>,
    worker: String,
    clock: Arc<dyn Clock>,
) -> (HistoryRecorder, HistoryWriter) {
    let (sender, receiver) = mpsc::channel(BACKLOG);
    let recorder = HistoryRecorder { sender, clock, dropped: AtomicU64::new(0) };
    (recorder, HistoryWriter { store, worker, events: tokio::sync::Mutex::new(receiver) })
}

/// Queues each task event with the time it happened, for the [`HistoryWriter`].
#[derive(Debug)]
pub(crate) struct HistoryRecorder {
    sender: mpsc::Sender<(i64, TaskEvent)>,
    clock: Arc<dyn Clock>,
    dropped: AtomicU64,
}

impl EventSink for HistoryRecorder {
    fn emit(&self, event: TaskEvent) {
        let now = self.clock.now().timestamp_millis();
        if self.sender.try_send((now, event)).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "the task history store is falling behind; task events were dropped");
            }
        }
    }
}

/// Folds queued events into records and writes them every [`GATHER`], and what is left
/// at shutdown.
#[derive(Debug)]
pub(crate) struct HistoryWriter {
    store: Arc<dyn TaskHistory>,
    worker: String,
    events: tokio::sync::Mutex<mpsc::Receiver<(i64, TaskEvent)>>,
}

/// The records being built: tasks without an outcome yet, finished ones not yet
/// written, and which tasks changed since the last write, in order.
#[derive(Debug, Default)]
struct Fold {
    open: HashMap<String, TaskRecord>,
    finished: HashMap<String, TaskRecord>,
    changed: Vec<String>,
}

impl Fold {
    /// Applies one event to its task's record.
    fn apply(&mut self, worker: &str, at: i64, event: TaskEvent) {
        let id = match &event {
            TaskEvent::Received { id, .. }
            | TaskEvent::Started { id }
            | TaskEvent::Succeeded { id, .. }
            | TaskEvent::Failed { id, .. }
            | TaskEvent::Retried { id, .. }
            | TaskEvent::Revoked { id, .. }
            | TaskEvent::Rejected { id, .. } => id.clone(),
        };
        let record = self.open.entry(id.clone()).or_insert_with(|| TaskRecord::new(&id, worker, at));
        let state = match event {
            TaskEvent::Received { name, args, kwargs, root_id, parent_id, retries, queue, sent_at_ms, .. } => {
                let shown = match (args, kwargs) {
                    (Some(args), Some(kwargs)) if kwargs != "{}" => format!("{args} {kwargs}"),
                    (args, kwargs) => args.or(kwargs).unwrap_or_default(),
                };
                *record = TaskRecord {
                    task: name,
                    queue,
                    args: FailedTask::preview(&shown),
                    retries,
                    parent_id,
                    root_id,
                    sent_at_ms,
                    received_at_ms: Some(at),
                    ..TaskRecord::new(&id, worker, at)
                };
                State::Received
            }
            TaskEvent::Started { .. } => {
                record.started_at_ms = Some(at);
                State::Started
            }
            TaskEvent::Succeeded { runtime, .. } => {
                record.runtime_ms = Some(u64::try_from(runtime.as_millis()).unwrap_or(u64::MAX));
                State::Success
            }
            TaskEvent::Failed { error, .. } => {
                record.error = Some(error.to_string());
                State::Failure
            }
            TaskEvent::Retried { error, .. } => {
                record.error = Some(error.to_string());
                State::Retry
            }
            TaskEvent::Revoked { .. } => State::Revoked,
            TaskEvent::Rejected { name, queue, error, .. } => {
                if record.task.is_empty() {
                    (record.task, record.queue) = (name, queue);
                }
                record.error = Some(error.to_string());
                State::Rejected
            }
        };
        record.state = state;
        record.updated_at_ms = at;
        if state.is_ready() || state == State::Retry {
            if record.runtime_ms.is_none() {
                record.runtime_ms = record.started_at_ms.map(|started| u64::try_from(at - started).unwrap_or(0));
            }
            if let Some(record) = self.open.remove(&id) {
                self.finished.insert(id.clone(), record);
            }
        }
        self.changed.push(id);
    }

    /// Each changed task's latest record, once, oldest change first; forgets the
    /// finished ones.
    fn take(&mut self) -> Vec<TaskRecord> {
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        // A task open again after an outcome (a retry received anew) is newer than it.
        for id in self.changed.drain(..).rev() {
            if !seen.insert(id.clone()) {
                continue;
            }
            if let Some(record) = self.open.get(&id) {
                records.push(record.clone());
            } else if let Some(record) = self.finished.remove(&id) {
                records.push(record);
            }
        }
        self.finished.clear();
        records.reverse();
        if self.open.len() > OPEN_LIMIT {
            let cut = records.iter().map(|r| r.updated_at_ms).max().unwrap_or(0) - STALE_MS;
            self.open.retain(|_, record| record.updated_at_ms >= cut);
        }
        records
    }
}

#[async_trait]
impl Component for HistoryWriter {
    fn name(&self) -> &'static str {
        "history writer"
    }

    async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
        let mut events = self.events.lock().await;
        let mut fold = Fold::default();
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let got = tokio::select! {
                _ = scope.shutdown.cancelled() => break,
                got = events.recv_many(&mut batch, BATCH) => got,
            };
            if got == 0 {
                break;
            }
            self.write(&mut fold, &mut batch).await;
            // A full batch means a backlog: write on without gathering.
            if got < BATCH && !scope.sleep(GATHER).await {
                break;
            }
        }
        // The worker has stopped taking tasks: what is queued is the last of it.
        loop {
            while batch.len() < BATCH {
                let Ok(event) = events.try_recv() else { break };
                batch.push(event);
            }
            if batch.is_empty() {
                return Ok(());
            }
            self.write(&mut fold, &mut batch).await;
        }
    }
}

impl HistoryWriter {
    async fn write(&self, fold: &mut Fold, batch: &mut Vec<(i64, TaskEvent)>) {
        for (at, event) in batch.drain(..) {
            fold.apply(&self.worker, at, event);
        }
        let records = fold.take();
        if records.is_empty() {
            return;
        }
        if let Err(error) = self.store.record(&records).await {
            tracing::warn!(%error, records = records.len(), "could not record task history; these records are dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use artel_core::{State, TaskError, TaskEvent};

    use super::Fold;

    fn received(id: &str, retries: u32) -> TaskEvent {
        TaskEvent::Received {
            id: id.into(),
            name: "add".into(),
            args: Some("(1, 2)".into()),
            kwargs: Some("{}".into()),
            root_id: None,
            parent_id: None,
            retries,
            eta: None,
            expires: None,
            queue: "celery".into(),
            sent_at_ms: Some(5),
            trace: artel_core::TraceContext::root(),
            parent_span_id: None,
        }
    }

    #[test]
    fn a_quick_tasks_events_fold_into_one_whole_record() {
        let mut fold = Fold::default();
        fold.apply("w", 10, received("a", 0));
        fold.apply("w", 11, TaskEvent::Started { id: "a".into() });
        let runtime = Duration::from_millis(7);
        fold.apply("w", 18, TaskEvent::Succeeded { id: "a".into(), result: serde_json::json!(3), runtime });
        let records = fold.take();
        assert_eq!(records.len(), 1, "{records:?}");
        let a = &records[0];
        assert_eq!(
            (a.state, a.task.as_str(), a.queue.as_str(), a.args.as_str()),
            (State::Success, "add", "celery", "(1, 2)")
        );
        assert_eq!(
            (a.sent_at_ms, a.received_at_ms, a.started_at_ms, a.updated_at_ms),
            (Some(5), Some(10), Some(11), 18)
        );
        assert_eq!(a.runtime_ms, Some(7));
        assert!(fold.take().is_empty() && fold.open.is_empty(), "written and forgotten");
    }

    #[test]
    fn a_retry_received_again_in_the_same_batch_shows_the_new_run() {
        let mut fold = Fold::default();
        fold.apply("w", 10, received("a", 0));
        fold.apply("w", 11, TaskEvent::Retried { id: "a".into(), error: TaskError::msg("busy") });
        fold.apply("w", 12, received("a", 1));
        fold.apply("w", 13, TaskEvent::Started { id: "a".into() });
        let records = fold.take();
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!((records[0].state, records[0].retries, records[0].error.as_deref()), (State::Started, 1, None));
        let failed = TaskError::msg("boom");
        fold.apply("w", 20, TaskEvent::Failed { id: "a".into(), error: failed });
        let records = fold.take();
        assert_eq!((records[0].state, records[0].runtime_ms), (State::Failure, Some(7)), "{records:?}");
    }

    #[test]
    fn an_outcome_without_a_receipt_still_leaves_a_record() {
        let mut fold = Fold::default();
        fold.apply("w", 10, TaskEvent::Failed { id: "x".into(), error: TaskError::msg("not registered") });
        let records = fold.take();
        assert_eq!(
            (records[0].task_id.as_str(), records[0].state, records[0].worker.as_str()),
            ("x", State::Failure, "w")
        );
    }
}
