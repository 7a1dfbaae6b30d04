//! The completion cell shared by a running job and its [`Handle`](crate::Handle), and the
//! [`Signal`] through which many handles report completion to one waiter.
//!
//! Invariant: a cell finishes exactly once (first writer wins), and every waker, watcher
//! and callback registered before that moment is told; one registered after is told at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tokio::sync::Notify;

use crate::error::JobError;
use crate::executor::Control;
use crate::sync::{Condvar, Mutex, MutexGuard};

/// A job's outcome.
pub(crate) type Outcome<T> = Result<T, JobError>;

type Callback<T> = Box<dyn FnOnce(&Outcome<T>) + Send>;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Accepted, waiting for a slot.
    Pending,
    /// Running.
    Running,
    /// Returned a value.
    Succeeded,
    /// Failed or panicked.
    Failed,
    /// Cancelled before it finished (or rejected).
    Cancelled,
}

impl Status {
    /// Whether the job has finished one way or another.
    pub fn is_done(self) -> bool {
        !matches!(self, Status::Pending | Status::Running)
    }
}

pub(crate) struct Cell<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    status: Status,
    outcome: Option<Outcome<T>>,
    taken: bool,
    waker: Option<Waker>,
    watchers: Vec<(Arc<Signal>, usize)>,
    callbacks: Vec<Callback<T>>,
}

impl<T> Cell<T> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                status: Status::Pending,
                outcome: None,
                taken: false,
                waker: None,
                watchers: Vec::new(),
                callbacks: Vec::new(),
            }),
        })
    }

    /// A cell that is already finished, e.g. for a rejected submission inside `map`.
    pub(crate) fn finished(outcome: Outcome<T>) -> Arc<Self> {
        let cell = Self::new();
        cell.finish(outcome);
        cell
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No user code runs while the lock is held except done-callbacks, whose panics
        // leave the state consistent; so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn status(&self) -> Status {
        self.lock().status
    }

    /// Pending -> Running; false when the job was cancelled first.
    pub(crate) fn start(&self) -> bool {
        let mut state = self.lock();
        if state.status != Status::Pending {
            return false;
        }
        state.status = Status::Running;
        true
    }

    /// Records the outcome unless one was recorded already; tells everyone waiting.
    pub(crate) fn finish(&self, outcome: Outcome<T>) -> bool {
        let mut state = self.lock();
        if state.status.is_done() {
            return false;
        }
        state.status = match &outcome {
            Ok(_) => Status::Succeeded,
            Err(JobError::Cancelled | JobError::Rejected(_)) => Status::Cancelled,
            Err(_) => Status::Failed,
        };
        for callback in std::mem::take(&mut state.callbacks) {
            callback(&outcome);
        }
        state.outcome = Some(outcome);
        let waker = state.waker.take();
        let watchers = std::mem::take(&mut state.watchers);
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        for (signal, index) in watchers {
            signal.push(index);
        }
        true
    }

    /// Cancels a job that has not finished; a running one only when `running_too`.
    pub(crate) fn cancel(&self, running_too: bool) -> bool {
        match self.status() {
            Status::Pending => self.finish(Err(JobError::Cancelled)),
            Status::Running if running_too => self.finish(Err(JobError::Cancelled)),
            Status::Cancelled => true,
            _ => false,
        }
    }

    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Outcome<T>> {
        let mut state = self.lock();
        if let Some(outcome) = state.outcome.take() {
            state.taken = true;
            return Poll::Ready(outcome);
        }
        assert!(!state.taken, "artel_pool::Handle polled after it returned its result");
        if !state.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            state.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// The outcome if the job finished and nobody took it yet.
    pub(crate) fn try_take(&self) -> Option<Outcome<T>> {
        let mut state = self.lock();
        let outcome = state.outcome.take();
        state.taken |= outcome.is_some();
        outcome
    }

    /// Reports `index` to `signal` when the job finishes (at once if it has).
    pub(crate) fn watch(&self, signal: &Arc<Signal>, index: usize) {
        let mut state = self.lock();
        if state.status.is_done() {
            drop(state);
            signal.push(index);
        } else {
            state.watchers.push((signal.clone(), index));
        }
    }

    pub(crate) fn on_done(&self, callback: Callback<T>) {
        let mut state = self.lock();
        match &state.outcome {
            Some(outcome) => callback(outcome),
            None if !state.status.is_done() => state.callbacks.push(callback),
            // Finished and already taken: there is no outcome left to show.
            None => {}
        }
    }
}

/// A queue of finished job indices that one waiter drains, from sync or async code.
#[derive(Default)]
pub(crate) struct Signal {
    ready: Mutex<VecDeque<usize>>,
    cond: Condvar,
    notify: Notify,
}

impl Signal {
    fn lock(&self) -> MutexGuard<'_, VecDeque<usize>> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, index: usize) {
        self.lock().push_back(index);
        self.cond.notify_all();
        self.notify.notify_one();
    }

    /// Next finished index, blocking until one arrives or `deadline` passes.
    pub(crate) fn pop_blocking(&self, deadline: Option<Instant>) -> Option<usize> {
        let mut ready = self.lock();
        loop {
            if let Some(index) = ready.pop_front() {
                return Some(index);
            }
            ready = match deadline {
                None => self.cond.wait(ready).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.checked_duration_since(Instant::now())?;
                    self.cond.wait_timeout(ready, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }

    /// Next finished index, or `None` once `deadline` passes.
    pub(crate) async fn pop(&self, deadline: Option<tokio::time::Instant>) -> Option<usize> {
        loop {
            if let Some(index) = self.lock().pop_front() {
                return Some(index);
            }
            // `notify_one` stores a permit when nobody waits, so a push between the
            // check above and this await is not lost.
            match deadline {
                None => self.notify.notified().await,
                Some(deadline) => tokio::time::timeout_at(deadline, self.notify.notified()).await.ok()?,
            }
        }
    }
}

impl<T: Send> Control for Cell<T> {
    fn status(&self) -> Status {
        Cell::status(self)
    }

    fn start(&self) -> bool {
        Cell::start(self)
    }

    fn fail(&self, error: JobError) -> bool {
        self.finish(Err(error))
    }
}

/// Every interleaving of finishing, cancelling and watching (`--cfg artel_loom`).
#[cfg(all(test, artel_loom))]
mod loom_models {
    use super::*;

    #[test]
    fn a_cell_finishes_once_and_tells_a_watcher_registered_at_any_moment() {
        loom::model(|| {
            let cell = Cell::<u32>::new();
            let signal = Arc::new(Signal::default());
            let finisher = {
                let cell = cell.clone();
                loom::thread::spawn(move || cell.finish(Ok(1)))
            };
            let canceller = {
                let cell = cell.clone();
                loom::thread::spawn(move || cell.cancel(true))
            };
            cell.watch(&signal, 7);
            let finished = finisher.join().expect("finisher");
            let cancelled = canceller.join().expect("canceller");
            assert_eq!(signal.pop_blocking(None), Some(7), "the watcher is told once it finished");
            match cell.try_take() {
                Some(Ok(1)) => assert!(finished && !cancelled, "the value won: it was not cancelled"),
                Some(Err(JobError::Cancelled)) => assert!(cancelled && !finished, "the cancel won"),
                other => panic!("exactly one outcome, got {other:?}"),
            }
            assert!(cell.try_take().is_none(), "taken once");
        });
    }
}
