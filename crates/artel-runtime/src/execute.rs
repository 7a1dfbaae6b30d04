//! Running one delivery: decode, look up, run under its limits, store, settle.
//!
//! Bad input never stops the worker: an undecodable message, an unknown task or
//! arguments of the wrong shape are dead-lettered with the reason, which is also stored
//! as a FAILURE result so the caller's `get()` sees it.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::Instant;

use serde_json::Value;

use artel_core::{
    Arguments, Broker, Clock, Context, Delivery, Embed, FailedTask, Headers, Registry, ResultBackend, State, TaskError,
    TaskErrorKind, TaskResult,
};

use crate::active::ActiveTasks;
use crate::canvas;
use crate::exclusive::{Stop, unique_claim};
use crate::rate::RateLimits;
use crate::retry::{self, Decision};
use crate::revoke::Revoked;
use crate::supervise::{Limits, Run, supervise};
use crate::tuning::Tuning;
use artel_core::worker::{Outcome, TaskObserver, WorkerStats};
use artel_core::{Chords, EventSink, Revocations, TaskEvent};

/// What deciding a call's turns reads: its id, options and arguments.
#[derive(Clone, Copy)]
struct Call<'a> {
    id: &'a str,
    options: &'a artel_core::TaskOptions,
    params: &'a [&'a str],
    args: &'a [Value],
    kwargs: &'a serde_json::Map<String, Value>,
}

/// What settling a call that ran reads besides its message.
struct Ran<'a> {
    id: &'a str,
    task: &'a str,
    options: &'a artel_core::TaskOptions,
    memo: Option<&'a crate::memo::Memo>,
    embed: &'a Embed,
    runtime: Duration,
}

/// A guard held while the call runs (a group slot, a lock), if it needed one.
type Held = Option<artel_lock::Guard>;

/// Why a message is settled as REVOKED without running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Discard {
    /// Its `expires` time passed before it could run.
    Expired,
    /// It was revoked.
    Revoked,
}

impl Discard {
    /// The reason stored with the REVOKED result (Celery's wording).
    fn reason(self) -> &'static str {
        match self {
            Discard::Expired => "expired",
            Discard::Revoked => "revoked",
        }
    }
}

/// What executing a delivery needs; shared by all in-flight tasks of a worker.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    pub(crate) registry: Arc<Registry>,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) backend: Arc<dyn ResultBackend>,
    pub(crate) chords: Arc<dyn Chords>,
    pub(crate) revocations: Arc<dyn Revocations>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) result_ttl: Option<Duration>,
    pub(crate) results_in_broker: bool,
    pub(crate) track_started: bool,
    pub(crate) track_received: bool,
    pub(crate) limits: Limits,
    pub(crate) stats: Arc<WorkerStats>,
    pub(crate) rate_limits: RateLimits,
    /// Rate and time limits changed by remote control, over the tasks' own.
    pub(crate) tuning: Tuning,
    /// What the consumer received and has not handed out, while one runs.
    pub(crate) holdings: std::sync::Mutex<Option<Arc<dyn artel_core::Holdings>>>,
    /// How many tasks run at once; remote control grows and shrinks them.
    pub(crate) slots: crate::slots::Slots,
    /// The queues consumed now; remote control adds and cancels them.
    pub(crate) queues: tokio::sync::watch::Sender<Vec<String>>,
    pub(crate) revoked: Revoked,
    pub(crate) active: ActiveTasks,
    /// This worker's node name, as the origin of the messages it publishes.
    pub(crate) origin: String,
    pub(crate) events: Option<Arc<dyn EventSink>>,
    /// Fired when the worker stops now: every run is dropped and its message handed back.
    pub(crate) stop_runs: tokio_util::sync::CancellationToken,
    /// Deliveries without an outcome after which a message is quarantined, for tasks
    /// that declare none; 0 turns the check off.
    pub(crate) max_deliveries: u32,
    /// Bodies larger than this are dead-lettered unread.
    pub(crate) max_message_bytes: usize,
    /// The cap on runs per group for tasks that declare none.
    pub(crate) max_running_per_group: Option<u32>,
    /// Child processes for tasks that run in them, and whether every task does.
    pub(crate) processes: Option<(Arc<artel_pool::ProcessPool>, bool)>,
    /// Where mutex tasks take their locks, when the backend offers locks.
    pub(crate) locks: Option<Arc<dyn artel_lock::Coordination>>,
    /// Where unique calls' keys are freed when they end, when the backend keeps them.
    pub(crate) unique: Option<Arc<dyn artel_core::UniqueKeys>>,
    /// Where shared rate limits are asked, when the backend keeps them.
    pub(crate) rates: Option<Arc<dyn artel_core::RateLimits>>,
    /// Where memoized tasks' results are kept, when the backend offers a cache.
    pub(crate) cache: Option<artel_cache::Cache>,
    /// Hears how each message ended (metrics), when set.
    pub(crate) observer: Option<Arc<dyn TaskObserver>>,
}

impl Dispatcher {
    /// The view of what the current consumer holds, if it offers one.
    pub(crate) fn holdings(&self) -> Option<Arc<dyn artel_core::Holdings>> {
        artel_core::lock(&self.holdings).clone()
    }

    /// Reads the revocations recorded since the last read and terminates the running
    /// tasks they say to.
    pub(crate) async fn read_revocations(&self) -> artel_core::BrokerResult<()> {
        let terminate = self.revoked.refresh(self.revocations.as_ref(), self.clock.now()).await?;
        self.active.terminate(&terminate);
        Ok(())
    }

    /// Runs `delivery` as the run whose trace context is `run`
    /// ([`artel_core::TraceContext::of_run`]).
    ///
    /// Every way of settling (reject, discard, lock, complete, retry, fail, hand back) is
    /// boxed where it is awaited: inline, the largest of them (about 7.6 KB) would size
    /// the future every running task holds for its whole run, which otherwise needs
    /// about 1.9 KB (`-Zprint-type-sizes`); a box per settlement costs far less than its
    /// broker round trip.
    pub(crate) async fn execute(&self, delivery: Delivery, run: artel_core::TraceContext) {
        self.received(delivery.message(), delivery.deliveries());
        let headers = &delivery.message().headers;
        let (id, task) = (headers.id.clone(), headers.task.clone());
        let size = delivery.message().body.len();
        if size > self.max_message_bytes {
            let limit = self.max_message_bytes;
            let reason = format!(
                "message body of {size} bytes is over this worker's {limit}-byte maximum (artel worker --max-message-size)"
            );
            let error = TaskError::of_kind(TaskErrorKind::InvalidMessage, reason);
            return Box::pin(self.reject(delivery, &id, error, &Embed::default())).await;
        }
        let body = match delivery.message().decode_body() {
            Ok(body) => body,
            Err(e) => {
                let error = TaskError::of_kind(TaskErrorKind::InvalidMessage, e);
                return Box::pin(self.reject(delivery, &id, error, &Embed::default())).await;
            }
        };
        let embed = body.embed;
        let Some(handler) = self.registry.get(&task).cloned().or_else(|| canvas::builtin(&task, &self.registry)) else {
            let error = TaskError::not_registered(&task);
            return Box::pin(self.reject(delivery, &id, error, &embed)).await;
        };
        self.event(|| TaskEvent::Received {
            id: id.clone(),
            name: task.clone(),
            args: headers.argsrepr.clone(),
            kwargs: headers.kwargsrepr.clone(),
            root_id: headers.root_id.clone(),
            parent_id: headers.parent_id.clone(),
            retries: headers.retries,
            eta: headers.eta,
            expires: headers.expires,
            queue: delivery.message().queue().to_owned(),
            sent_at_ms: headers.sent_ms(),
            trace: run.clone(),
            parent_span_id: artel_core::TraceContext::of(headers).map(|parent| parent.span_id),
        });
        let options = self.tuning.options(&task, || {
            let declared = handler.options();
            let max_running_per_group = declared.max_running_per_group.or(self.max_running_per_group);
            artel_core::TaskOptions { max_running_per_group, ..declared }
        });
        if let Some(error) =
            lost_too_often(delivery.deliveries(), options.max_deliveries.unwrap_or(self.max_deliveries))
        {
            return Box::pin(self.reject(delivery, &id, error, &embed)).await;
        }
        let ignore_result = headers.ignore_result;
        if headers.expires.is_some_and(|at| at <= self.clock.now()) {
            return Box::pin(self.discard(delivery, &id, Discard::Expired, ignore_result, &embed)).await;
        }
        let meta = || serde_json::json!({"pid": std::process::id(), "hostname": crate::hostname()});
        if self.track_received && !ignore_result {
            self.store(&TaskResult::progress(&id, State::Received, meta()), false).await;
        }
        if let Some(rate) = options.rate_limit.as_deref() {
            let _waiting = self.active.wait(delivery.message());
            tokio::select! {
                biased;
                // Not started: the dropped delivery goes straight back to the queue.
                _ = self.stop_runs.cancelled() => return self.settled(delivery.message(), Outcome::HandedBack),
                _ = self.rate_limits.wait(&task, Some(rate)) => {}
            }
        }
        if self.revoked.contains(&id) {
            return Box::pin(self.discard(delivery, &id, Discard::Revoked, ignore_result, &embed)).await;
        }
        let memo = match Box::pin(self.recall(&options, headers, &body.args, &body.kwargs)).await {
            Some((_, Some(value))) => return Box::pin(self.answer_cached(delivery, value, &embed)).await,
            Some((memo, None)) => Some(memo),
            None => None,
        };
        let call =
            Call { id: &id, options: &options, params: handler.params(), args: &body.args, kwargs: &body.kwargs };
        let Some((delivery, _slot, _lock)) = Box::pin(self.take_turns(delivery, call, &embed)).await else { return };
        let headers = &delivery.message().headers;
        self.started(delivery.message());
        if self.track_started && !ignore_result {
            self.store(&TaskResult::progress(&id, State::Started, meta()), false).await;
        }
        let results = (!ignore_result).then(|| (self.backend.clone(), self.result_ttl));
        let ctx = Context::for_message(headers, results);
        let limits = Limits::of(headers, &options, self.limits);
        let running = self.active.register(&ctx, delivery.message());
        self.event(|| TaskEvent::Started { id: id.clone() });
        let in_child = self
            .processes
            .as_ref()
            .filter(|(_, all)| (*all || options.process == Some(true)) && self.registry.get(&task).is_some());
        let call = match in_child {
            Some((pool, _)) => {
                let run = crate::process::Run {
                    message: delivery.message(),
                    deliveries: delivery.deliveries(),
                    soft_time_limit: limits.soft,
                };
                crate::process::run_in_child(pool, run, body.args, body.kwargs)
            }
            // Sends from inside the task continue its trace.
            None => Box::pin(artel_core::trace::scope(
                run,
                handler.call(Arguments::new(body.args, body.kwargs), ctx.clone()),
            )),
        };
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let run = supervise(call, &ctx, limits, running.terminate(), &self.stop_runs).await;
        drop(running);
        self.stats.active.fetch_sub(1, Ordering::Relaxed);
        let ran = Ran {
            id: &id,
            task: &task,
            options: &options,
            memo: memo.as_ref(),
            embed: &embed,
            runtime: started.elapsed(),
        };
        Box::pin(self.settle_run(delivery, run, &ctx, ran)).await;
    }

    /// Settles a call that ran (or was stopped while running) by its outcome: stored and
    /// acked, retried, failed, handed back.
    ///
    /// Apart from [`Self::execute`]: the outcome and its error would keep slots in the
    /// future every running task holds for its whole run.
    async fn settle_run(&self, delivery: Delivery, run: Run, ctx: &Context, ran: Ran<'_>) {
        let Ran { id, task, options, memo, embed, runtime } = ran;
        let headers = &delivery.message().headers;
        let ignore_result = headers.ignore_result;
        let outcome = match run {
            Run::Ended(outcome) => outcome,
            Run::Stopped => {
                self.settled(delivery.message(), Outcome::HandedBack);
                return Box::pin(hand_back(delivery, ctx)).await;
            }
        };
        self.ran(delivery.message(), runtime);
        match outcome {
            Ok(value) => {
                if let Some(memo) = memo {
                    self.remember(memo, &value).await;
                }
                self.settled(delivery.message(), Outcome::Succeeded);
                tracing::info!(%task, %id, ?runtime, "succeeded");
                self.event(|| TaskEvent::Succeeded { id: id.to_owned(), result: value.clone(), runtime });
                let result = self.extended(TaskResult::success(id, value, self.clock.now()), headers, runtime);
                Box::pin(self.complete(delivery, id, result, ignore_result, embed, None)).await;
            }
            Err(error) if matches!(error.kind(), TaskErrorKind::InvalidArguments | TaskErrorKind::Rejected) => {
                Box::pin(self.reject(delivery, id, error, embed)).await;
            }
            Err(error) if error.kind() == TaskErrorKind::Requeued => {
                tracing::info!(%task, %id, reason = %error.message(), "handed back to the queue, as the task asked");
                self.settled(delivery.message(), Outcome::HandedBack);
                settle(delivery.requeue().await, id);
            }
            Err(error) if error.kind() == TaskErrorKind::Ignored => {
                self.settled(delivery.message(), Outcome::Ignored);
                tracing::info!(%task, %id, "ignored: nothing recorded, as the task asked");
                settle(delivery.ack().await, id);
            }
            Err(error) if error.kind() == TaskErrorKind::WorkerLost && options.reject_on_worker_lost == Some(true) => {
                tracing::warn!(%task, %id, %error, "its child process died; the message comes back after its lease (reject_on_worker_lost)");
                self.settled(delivery.message(), Outcome::HandedBack);
                delivery.abandon();
            }
            Err(error) => match retry::decide(&error, options, headers.retries, fastrand::f64()) {
                Decision::Retry { retry, countdown } => {
                    Box::pin(self.retry(delivery, id, error, retry, countdown)).await
                }
                Decision::GiveUp { max } => {
                    let gave_up = format!("gave up after {max} retries");
                    let detail = error.traceback().map_or(gave_up.clone(), |detail| format!("{detail}\n{gave_up}"));
                    let error = error.with_traceback(detail);
                    Box::pin(self.fail(delivery, error, runtime, embed)).await;
                }
                Decision::Fail => Box::pin(self.fail(delivery, error, runtime, embed)).await,
            },
        }
    }

    /// Takes the call's turns before it runs: under its shared rate limit, in its group's
    /// slots, under its lock. With its message and the guards to hold while it runs; or
    /// none when it was settled here (rejected, put off, handed back).
    ///
    /// Apart from [`Self::execute`]: each turn's outcome would keep a slot in the future
    /// every running task holds for its whole run.
    async fn take_turns(&self, delivery: Delivery, call: Call<'_>, embed: &Embed) -> Option<(Delivery, Held, Held)> {
        let Call { id, options, params, args, kwargs } = call;
        let (delivery, _) = match self.admit(delivery, options, params, args, kwargs).await.into_run() {
            ControlFlow::Continue(go) => go,
            ControlFlow::Break(stop) => return self.refuse(stop, id, embed).await,
        };
        let (delivery, slot) = match self.take_group_slot(delivery, options).await.into_run() {
            ControlFlow::Continue(go) => go,
            ControlFlow::Break(stop) => return self.refuse(stop, id, embed).await,
        };
        match self.take_lock(delivery, options, params, args, kwargs).await.into_run() {
            ControlFlow::Continue((delivery, lock)) => Some((delivery, slot, lock)),
            ControlFlow::Break(stop) => self.refuse(stop, id, embed).await,
        }
    }

    /// Rejects a call that cannot take its turn, if it was not settled already; it will
    /// not run.
    async fn refuse<T>(&self, stop: Stop, id: &str, embed: &Embed) -> Option<T> {
        if let Some((delivery, error)) = stop {
            Box::pin(self.reject(delivery, id, error, embed)).await;
        }
        None
    }

    /// Answers a memoized call with the `value` cached for it, without running it.
    async fn answer_cached(&self, delivery: Delivery, value: Value, embed: &Embed) {
        self.settled(delivery.message(), Outcome::Cached);
        let headers = &delivery.message().headers;
        let id = headers.id.clone();
        tracing::info!(task = %headers.task, %id, "answered from the cache (cache_for)");
        self.event(|| TaskEvent::Succeeded { id: id.clone(), result: value.clone(), runtime: Duration::ZERO });
        let mut result = self.extended(TaskResult::success(&id, value, self.clock.now()), headers, Duration::ZERO);
        result.extra.insert("cached".to_owned(), Value::Bool(true));
        let ignore_result = headers.ignore_result;
        self.complete(delivery, &id, result, ignore_result, embed, None).await;
    }

    /// Settles a message that will not run as REVOKED.
    async fn discard(&self, delivery: Delivery, id: &str, why: Discard, ignore_result: bool, embed: &Embed) {
        let reason = why.reason();
        let outcome = match why {
            Discard::Expired => Outcome::Expired,
            Discard::Revoked => Outcome::Revoked,
        };
        self.settled(delivery.message(), outcome);
        tracing::info!(task = %delivery.message().headers.task, %id, reason, "revoked");
        let expired = why == Discard::Expired;
        self.event(|| TaskEvent::Revoked { id: id.to_owned(), terminated: false, expired });
        let error = TaskError::of_kind(TaskErrorKind::Revoked, reason);
        let result = TaskResult::failure(id, &error, self.clock.now());
        self.complete(delivery, id, result, ignore_result, embed, None).await;
    }

    /// Records a run that failed for good (or was terminated): FAILURE (REVOKED) stored,
    /// the failure kept where the broker records failures, the message acknowledged.
    async fn fail(&self, delivery: Delivery, error: TaskError, runtime: Duration, embed: &Embed) {
        let (outcome, error) = match error.kind() {
            TaskErrorKind::Revoked => (Outcome::Revoked, error),
            _ => (Outcome::Failed, error.traced()),
        };
        self.settled(delivery.message(), outcome);
        let headers = &delivery.message().headers;
        let id = headers.id.as_str();
        log_failure(&headers.task, id, runtime, &error);
        if error.kind() == TaskErrorKind::Revoked {
            self.event(|| TaskEvent::Revoked { id: id.to_owned(), terminated: true, expired: false });
        } else {
            self.event(|| TaskEvent::Failed { id: id.to_owned(), error: error.clone() });
        }
        let now = self.clock.now();
        let failure = (error.kind() != TaskErrorKind::Revoked).then(|| FailedTask {
            task_id: id.to_owned(),
            task: headers.task.clone(),
            queue: delivery.message().queue().to_owned(),
            args: FailedTask::preview(headers.argsrepr.as_deref().unwrap_or_default()),
            error: error.to_string(),
            worker: self.origin.clone(),
            failed_at_ms: now.timestamp_millis(),
            attempts: headers.retries.saturating_add(1),
        });
        let result = self.extended(TaskResult::failure(id, &error, now), headers, runtime);
        let (id, ignore) = (id.to_owned(), headers.ignore_result);
        self.complete(delivery, &id, result, ignore, embed, failure).await;
    }

    /// Adds who ran the task and for how long to its final result (Celery's extended
    /// result fields, plus `runtime` in seconds), for `artel result` and Python's
    /// `AsyncResult.name` / `.worker`.
    fn extended(&self, mut result: TaskResult, headers: &Headers, runtime: Duration) -> TaskResult {
        let extra = &mut result.extra;
        extra.insert("name".to_owned(), Value::from(headers.task.as_str()));
        extra.insert("worker".to_owned(), Value::from(self.origin.as_str()));
        extra.insert("retries".to_owned(), Value::from(headers.retries));
        extra.insert("runtime".to_owned(), Value::from(runtime.as_secs_f64()));
        result
    }

    /// Emits an event when the worker has a sink; `fields` is only built then.
    /// Emits the event `make` builds, built only when events are on.
    pub(crate) fn event(&self, make: impl FnOnce() -> TaskEvent) {
        if let Some(sink) = self.events.as_ref().filter(|sink| sink.listening()) {
            sink.emit(make());
        }
    }

    /// Publishes the workflow's next steps for this outcome; false (after handing the
    /// message back to the queue) when they could not be published.
    async fn advance(&self, delivery: &Delivery, result: &TaskResult, embed: &Embed) -> bool {
        if *embed == Embed::default() {
            return true;
        }
        let error = result.error();
        let outcome = error.as_ref().map_or(Ok(&result.result), Err);
        match self.follow_up(&delivery.message().headers, embed, outcome).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(id = %result.task_id, error = %e, "could not publish the workflow's next steps; the message goes back to the queue");
                false
            }
        }
    }

    /// Advances the workflow, records the outcome and settles the message: in one step
    /// when the broker holds the results too, else store, then ack (recording `failure`
    /// with the ack when there is one).
    ///
    /// As in Celery, a success's follow-ups are published before its result is stored,
    /// a failure's errbacks after: an errback reading the failed task's result finds it.
    async fn complete(
        &self,
        delivery: Delivery,
        id: &str,
        result: TaskResult,
        ignore_result: bool,
        embed: &Embed,
        failure: Option<FailedTask>,
    ) {
        if result.status.is_exception() {
            let stored = self.store(&result, ignore_result).await;
            if stored && !self.advance(&delivery, &result, embed).await {
                return settle(delivery.requeue().await, id);
            }
            return self.finish(delivery, id, stored, failure).await;
        }
        if !self.advance(&delivery, &result, embed).await {
            return settle(delivery.requeue().await, id);
        }
        let delivery = if ignore_result || !self.results_in_broker {
            delivery
        } else {
            let claim = unique_claim(&delivery.message().headers);
            match delivery.ack_with_result(&result, self.result_ttl).await {
                Ok(None) => return self.release_unique(claim).await,
                Ok(Some(unsupported)) => unsupported,
                Err(e) => {
                    tracing::error!(id = %id, error = %e, "could not store the result; the message goes back to the queue");
                    return;
                }
            }
        };
        let stored = self.store(&result, ignore_result).await;
        self.finish(delivery, id, stored, failure).await;
    }

    /// Acks once the result is safely stored; otherwise hands the message back so the
    /// task runs again (at least once) rather than losing its result.
    async fn finish(&self, delivery: Delivery, id: &str, stored: bool, failure: Option<FailedTask>) {
        if stored {
            let claim = unique_claim(&delivery.message().headers);
            match failure {
                Some(failure) => settle(delivery.ack_failed(&failure).await, id),
                None => settle(delivery.ack().await, id),
            }
            self.release_unique(claim).await;
        } else {
            tracing::warn!(id = %id, "the result could not be stored; the message goes back to the queue to run again");
            settle(delivery.requeue().await, id);
        }
    }

    /// Dead-letters bad input with its reason and records the reason as the result.
    async fn reject(&self, delivery: Delivery, id: &str, error: TaskError, embed: &Embed) {
        let error = error.traced();
        self.settled(delivery.message(), Outcome::DeadLettered);
        tracing::error!(task = %delivery.message().headers.task, %id, %error, "rejected to the dead letters");
        if !id.is_empty() {
            self.event(|| TaskEvent::Rejected {
                id: id.to_owned(),
                name: delivery.message().headers.task.clone(),
                queue: delivery.message().queue().to_owned(),
                error: error.clone(),
            });
            let result = TaskResult::failure(id, &error, self.clock.now());
            self.store(&result, false).await;
            if !self.advance(&delivery, &result, embed).await {
                return settle(delivery.requeue().await, id);
            }
        }
        let claim = unique_claim(&delivery.message().headers);
        settle(delivery.reject(&error.to_string()).await, id);
        self.release_unique(claim).await;
    }

    /// Stores a result (unless ignored); false when the backend failed.
    async fn store(&self, result: &TaskResult, ignore_result: bool) -> bool {
        if ignore_result {
            return true;
        }
        match self.backend.store(result, self.result_ttl).await {
            Ok(_) => true,
            Err(e) => {
                if let Some(observer) = &self.observer {
                    observer.broker_error(e.kind());
                }
                tracing::error!(id = %result.task_id, error = %e, "could not store the task result");
                false
            }
        }
    }
}

/// The outcome line of a run that failed for good (or was terminated), with the error's
/// chain of causes.
fn log_failure(task: &str, id: &str, runtime: Duration, error: &TaskError) {
    if error.kind() == TaskErrorKind::Revoked {
        return tracing::info!(%task, %id, ?runtime, reason = %error.message(), "revoked");
    }
    // The traceback's last line is the error itself.
    let last = error.to_string();
    let detail = error.traceback().and_then(|tb| tb.strip_suffix(last.as_str())).map(str::trim_end);
    match detail.filter(|detail| !detail.is_empty()) {
        Some(chain) => tracing::warn!(%task, %id, ?runtime, %error, chain = %chain.replace('\n', "; "), "failed"),
        None => tracing::warn!(%task, %id, ?runtime, %error, "failed"),
    }
}

/// The error that quarantines a message delivered more than `max` times (its earlier
/// workers all died running it), if it was; a poison message must not take down every
/// worker in turn.
fn lost_too_often(deliveries: u32, max: u32) -> Option<TaskError> {
    (max > 0 && deliveries > max).then(|| {
        let reason =
            format!("delivered {max} times without finishing (the worker died each time: crash, OOM or kill?)");
        TaskError::of_kind(TaskErrorKind::WorkerLost, reason)
    })
}

/// Gives the message of a run the worker stopped back to the queue once the run has
/// really stopped, so it never runs twice at once: at once when nothing of it is left
/// (an async task's future is dropped, its child processes killed), else when its thread
/// ends. A worker process that exits first never hands it back: its lease lapses.
async fn hand_back(mut delivery: Delivery, ctx: &Context) {
    let (id, task) = (ctx.id().to_owned(), ctx.task());
    if !ctx.runs_unstoppably() {
        tracing::info!(%task, %id, "stopped with the worker; the message goes back to the queue");
        return settle(delivery.requeue().await, &id);
    }
    tracing::warn!(
        %task, %id,
        "a blocking task's thread cannot be stopped: its message goes back to the queue when the thread ends, or when its lease lapses after this process exits"
    );
    delivery.keep_on_drop();
    let ctx = ctx.clone();
    tokio::spawn(async move {
        ctx.stoppable().await;
        settle(delivery.requeue().await, &id);
    });
}

pub(crate) fn settle(outcome: artel_core::BrokerResult<()>, id: &str) {
    if let Err(e) = outcome {
        // The broker redelivers an unsettled message once its lease lapses.
        tracing::error!(id = %id, error = %e, "could not acknowledge the message; it will be delivered again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_quarantined_only_past_its_max_deliveries() {
        assert!(lost_too_often(0, 5).is_none(), "0: the broker does not count");
        assert!(lost_too_often(5, 5).is_none(), "the fifth delivery still runs");
        let error = lost_too_often(6, 5).expect("quarantined");
        assert_eq!(error.kind(), TaskErrorKind::WorkerLost);
        assert_eq!(error.exc_type(), "WorkerLostError");
        assert!(error.message().starts_with("delivered 5 times without finishing"), "{error}");
        assert!(lost_too_often(100, 0).is_none(), "0 turns the check off");
    }
}
