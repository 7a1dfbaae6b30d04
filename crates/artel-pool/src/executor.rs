//! The pool's own executor: a few runner tasks poll many async jobs, and the pool's own
//! threads run blocking ones.
//!
//! A tokio task per job costs ~0.5-0.8 µs on a 2-core machine (spawn, cross-worker
//! wake-ups, join handle). Here a job is one allocation pushed on a queue; runner tasks
//! (one per core) pop and poll async jobs, and a job's waker puts it back on the ready
//! queue. Concurrency limits become counters checked when a runner admits a job.
//!
//! Blocking jobs skip the runners: each of the lane's `threads` OS threads takes the next
//! waiting job itself and runs it to the end, so a job costs one queue push and pop (a
//! `spawn_blocking` per job cost ~15 µs: a thread hand-off and a wake-up of the runner
//! awaiting it). A submitter wakes a thread only when one sleeps.
//!
//! Invariants:
//! * a job is polled by at most one runner at a time (its future sits behind a mutex, and
//!   `scheduled` keeps it in the ready queue at most once);
//! * every admitted job ends in `complete` exactly once: returned, panicked, cancelled, or
//!   dropped with the runtime;
//! * a runner only sleeps after re-checking the queues with its `idle` flag published,
//!   and producers wake any runner whose flag they clear, so no work is left unseen.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::catch_unwind::panic_message;
use crate::cell::Status;
use crate::error::JobError;
use crate::live::Live;
use crate::sync::{AtomicBool, AtomicU8, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};

/// A job's body; it records its own outcome in its cell when it ends.
pub(crate) enum Work {
    /// Polled by the runners.
    Async(Pin<Box<dyn Future<Output = ()> + Send>>),
    /// Run by a pool thread; a panic is recorded as the job's failure.
    Blocking(Box<dyn FnOnce() + Send>),
}

/// What the executor needs from a job's typed completion cell.
pub(crate) trait Control: Send + Sync {
    fn status(&self) -> Status;
    fn start(&self) -> bool;
    fn fail(&self, error: JobError) -> bool;
}

/// Jobs of one kind sharing a concurrency limit (async jobs, blocking jobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LaneId {
    Async = 0,
    Blocking = 1,
}

struct Lane {
    waiting: Mutex<Waiting>,
    /// Pool threads sleeping for a job (the blocking lane's).
    wake: Condvar,
    /// Slots taken: running jobs plus reservations of runners about to admit jobs.
    active: Padded<AtomicUsize>,
    limit: usize,
}

/// A lane's jobs waiting for a slot, and how many pool threads sleep for one.
#[derive(Default)]
struct Waiting {
    jobs: VecDeque<Arc<Job>>,
    sleepers: usize,
}

impl Lane {
    /// Takes up to `want` free slots at once (compare-and-swap, so two runners can never
    /// both take the last slot); returns how many it got.
    fn reserve(&self, want: usize) -> usize {
        let mut taken = self.active.load(Ordering::Acquire);
        loop {
            let free = self.limit.saturating_sub(taken).min(want);
            if free == 0 {
                return 0;
            }
            match self.active.compare_exchange_weak(taken, taken + free, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return free,
                Err(now) => taken = now,
            }
        }
    }

    fn release(&self, slots: usize) {
        if slots > 0 {
            self.active.fetch_sub(slots, Ordering::AcqRel);
        }
    }
}

struct Runner {
    waker: Mutex<Option<Waker>>,
    idle: AtomicBool,
}

/// Counters shared with the pool. Each sits on its own cache line: submitting threads
/// and runners update them concurrently, and sharing a line would make every update a
/// cross-core miss.
#[derive(Default)]
pub(crate) struct Counters {
    /// Jobs waiting for a slot; only kept when a backlog limit needs it (see `Executor::pending`).
    pub(crate) pending: Padded<AtomicUsize>,
    pub(crate) track_pending: bool,
    pub(crate) live: Padded<Live>,
    pub(crate) succeeded: Padded<AtomicUsize>,
    pub(crate) failed: Padded<AtomicUsize>,
    pub(crate) cancelled: Padded<AtomicUsize>,
}

impl Counters {
    fn leave_pending(&self) {
        if self.track_pending {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A value alone on its cache line (128 bytes covers adjacent-line prefetching).
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

pub(crate) struct Executor {
    lanes: [Lane; 2],
    ready: Mutex<VecDeque<Arc<Job>>>,
    runners: Vec<Runner>,
    stopping: AtomicBool,
    pub(crate) counters: Counters,
}

pub(crate) struct Job {
    body: Mutex<Option<Work>>,
    control: Arc<dyn Control>,
    executor: Arc<Executor>,
    lane: LaneId,
    scheduled: AtomicBool,
    /// WAITING -> ADMITTED -> DONE, or WAITING -> DONE; decides which counter to release.
    phase: AtomicU8,
}

const WAITING: u8 = 0;
const ADMITTED: u8 = 1;
const DONE: u8 = 2;

/// Polls per runner turn before yielding to tokio, so runners share threads fairly.
const BUDGET: usize = 128;

/// Jobs a runner takes off a shared queue at once.
const BATCH: usize = 64;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Job bodies run outside these locks (panics are caught), so poisoning cannot
    // leave a queue half-updated.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Executor {
    /// An executor with `runners` runner tasks spawned on `runtime`, and as many threads
    /// as the blocking lane's limit.
    pub(crate) fn start(
        runtime: &tokio::runtime::Handle,
        runners: usize,
        limits: [usize; 2],
        track_pending: bool,
    ) -> std::io::Result<Arc<Self>> {
        let executor = Self::new(runners, limits, track_pending);
        for index in 0..executor.lanes[LaneId::Blocking as usize].limit {
            let (serving, runtime) = (executor.clone(), runtime.clone());
            // Inside the runtime, as tokio's blocking threads are: a job may use
            // `Handle::current()` to block on async work.
            let spawned = std::thread::Builder::new().name(format!("artel-pool-{index}")).spawn(move || {
                let _runtime = runtime.enter();
                serving.serve_thread();
            });
            if let Err(error) = spawned {
                executor.stop();
                return Err(error);
            }
        }
        for index in 0..executor.runners.len() {
            runtime.spawn(RunnerTask { executor: executor.clone(), index, local: VecDeque::with_capacity(BATCH) });
        }
        Ok(executor)
    }

    /// An executor whose `runners` and threads are not running yet.
    fn new(runners: usize, limits: [usize; 2], track_pending: bool) -> Arc<Self> {
        let lane = |limit| Lane {
            waiting: Mutex::default(),
            wake: Condvar::new(),
            active: Padded(AtomicUsize::new(0)),
            limit,
        };
        Arc::new(Self {
            lanes: limits.map(lane),
            ready: Mutex::default(),
            runners: (0..runners.max(1))
                .map(|_| Runner { waker: Mutex::new(None), idle: AtomicBool::new(false) })
                .collect(),
            stopping: AtomicBool::new(false),
            counters: Counters { track_pending, ..Counters::default() },
        })
    }

    /// Queues a new job; it starts when its lane has a free slot.
    pub(crate) fn submit(self: &Arc<Self>, lane: LaneId, control: Arc<dyn Control>, body: Work) -> Arc<Job> {
        let job = Arc::new(Job {
            body: Mutex::new(Some(body)),
            control,
            executor: self.clone(),
            lane,
            scheduled: AtomicBool::new(false),
            phase: AtomicU8::new(WAITING),
        });
        let queue = &self.lanes[lane as usize];
        let mut waiting = lock(&queue.waiting);
        waiting.jobs.push_back(job.clone());
        let sleeping = waiting.sleepers > 0;
        drop(waiting);
        match lane {
            LaneId::Async => self.wake_a_runner(),
            // Read under the lock: a thread counts itself asleep under it, so it is
            // either seen here or sees the job before it sleeps.
            LaneId::Blocking if sleeping => queue.wake.notify_one(),
            LaneId::Blocking => {}
        }
        job
    }

    /// A pool thread's life: take the blocking lane's next job, run it, until the
    /// executor stops and no job waits.
    fn serve_thread(self: Arc<Self>) {
        let lane = &self.lanes[LaneId::Blocking as usize];
        loop {
            let job = {
                let mut waiting = lock(&lane.waiting);
                loop {
                    if let Some(job) = waiting.jobs.pop_front() {
                        break job;
                    }
                    if self.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                    waiting.sleepers += 1;
                    waiting = lane.wake.wait(waiting).unwrap_or_else(|e| e.into_inner());
                    waiting.sleepers -= 1;
                }
            };
            // A thread is its own slot: the lane has as many slots as threads.
            lane.active.fetch_add(1, Ordering::AcqRel);
            if job.admit() {
                job.run_here();
            }
        }
    }

    /// Cancels every job still waiting for a slot.
    pub(crate) fn cancel_waiting(&self) {
        for lane in &self.lanes {
            let waiting = std::mem::take(&mut lock(&lane.waiting).jobs);
            for job in waiting {
                job.control.fail(JobError::Cancelled);
                job.end_unrun();
            }
        }
    }

    /// Jobs waiting for a slot now.
    pub(crate) fn pending(&self) -> usize {
        if self.counters.track_pending {
            return self.counters.pending.load(Ordering::Acquire);
        }
        self.lanes.iter().map(|l| lock(&l.waiting).jobs.len()).sum()
    }

    /// Lets the runners exit once no job is left.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let threads = &self.lanes[LaneId::Blocking as usize];
        // Under the lock: a thread about to sleep has either seen `stopping` or is asleep.
        drop(lock(&threads.waiting));
        threads.wake.notify_all();
        for runner in &self.runners {
            runner.idle.store(false, Ordering::SeqCst);
            if let Some(waker) = lock(&runner.waker).take() {
                waker.wake();
            }
        }
    }

    fn wake_a_runner(&self) {
        for runner in &self.runners {
            // A plain load first: busy runners are the common case and need no locked swap.
            if runner.idle.load(Ordering::SeqCst) && runner.idle.swap(false, Ordering::SeqCst) {
                if let Some(waker) = lock(&runner.waker).take() {
                    waker.wake();
                }
                return;
            }
        }
    }

    /// Moves a batch of runnable jobs into `local`: woken jobs first, then waiting async
    /// jobs as far as their lane has free slots. Batches keep queue locks from bouncing
    /// between the submitting thread and the runners on every job.
    fn refill(&self, local: &mut VecDeque<Arc<Job>>) {
        {
            let mut ready = lock(&self.ready);
            let take = ready.len().min(BATCH);
            local.extend(ready.drain(..take));
        }
        if !local.is_empty() {
            return;
        }
        let lane = &self.lanes[LaneId::Async as usize];
        let reserved = lane.reserve(BATCH);
        if reserved == 0 {
            return;
        }
        let batch: Vec<Arc<Job>> = {
            let mut waiting = lock(&lane.waiting);
            let take = waiting.jobs.len().min(reserved);
            waiting.jobs.drain(..take).collect()
        };
        lane.release(reserved - batch.len());
        // Each admit uses one reservation, or gives it back when the job was cancelled.
        local.extend(batch.into_iter().filter(|job| job.admit()));
    }

    fn has_work(&self) -> bool {
        let lane = &self.lanes[LaneId::Async as usize];
        !lock(&self.ready).is_empty()
            || (lane.active.load(Ordering::Acquire) < lane.limit && !lock(&lane.waiting).jobs.is_empty())
    }
}

impl Job {
    /// Takes a waiting job into its lane on a slot the caller reserved; false when it was
    /// cancelled while waiting (the slot is then given back).
    fn admit(self: &Arc<Self>) -> bool {
        if self.phase.compare_exchange(WAITING, ADMITTED, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // Already ended (cancelled and reaped): return the reservation.
            self.executor.lanes[self.lane as usize].release(1);
            return false;
        }
        self.executor.counters.leave_pending();
        if self.control.start() {
            return true;
        }
        self.end_unrun();
        false
    }

    /// Ends a job whose body will not run (again).
    fn end_unrun(&self) {
        let body = lock(&self.body).take();
        drop(body);
        self.complete();
    }

    /// Runs a blocking job on this thread, to the end.
    fn run_here(&self) {
        let work = lock(&self.body).take();
        if let Some(Work::Blocking(work)) = work {
            if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(work)) {
                self.control.fail(JobError::Panicked(panic_message(payload)));
            }
        }
        self.complete();
    }

    /// Polls an async job on a runner (or drops the body of one that was cancelled).
    fn run(self: Arc<Self>) {
        self.scheduled.store(false, Ordering::SeqCst);
        let mut slot = lock(&self.body);
        let Some(work) = slot.as_mut() else { return };
        if self.control.status().is_done() {
            // Cancelled: drop the body now.
            *slot = None;
            drop(slot);
            return self.complete();
        }
        // A blocking job reaches a runner only when reaped after a cancel (above).
        let Work::Async(body) = work else { return };
        let waker = Waker::from(self.clone());
        let polled =
            std::panic::catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(&mut Context::from_waker(&waker))));
        match polled {
            Ok(Poll::Pending) => return,
            Ok(Poll::Ready(())) => {}
            Err(payload) => {
                self.control.fail(JobError::Panicked(panic_message(payload)));
            }
        }
        *slot = None;
        drop(slot);
        self.complete();
    }

    /// Wakes the job so a runner notices it was cancelled and drops its body.
    pub(crate) fn reap(self: &Arc<Self>) {
        self.wake_by_ref();
    }

    /// Bookkeeping when a job ends, however it ends; runs once per job.
    fn complete(&self) {
        let was = self.phase.swap(DONE, Ordering::AcqRel);
        if was == DONE {
            return;
        }
        let executor = &self.executor;
        let counters = &executor.counters;
        let counter = match self.control.status() {
            Status::Succeeded => &counters.succeeded,
            Status::Failed => &counters.failed,
            _ => &counters.cancelled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if was == ADMITTED {
            executor.lanes[self.lane as usize].active.fetch_sub(1, Ordering::AcqRel);
        } else {
            counters.leave_pending();
        }
        counters.live.exit();
        if executor.stopping.load(Ordering::SeqCst) {
            executor.stop(); // let every runner see whether it may exit
        } else if self.lane == LaneId::Async {
            executor.wake_a_runner(); // a slot opened: a sleeping runner may admit a job
        }
    }
}

impl Wake for Job {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::SeqCst) {
            lock(&self.executor.ready).push_back(self.clone());
            self.executor.wake_a_runner();
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // Not ended means its runtime dropped it unfinished.
        if self.phase.load(Ordering::Acquire) != DONE {
            self.control.fail(JobError::Cancelled);
            self.complete();
        }
    }
}

struct RunnerTask {
    executor: Arc<Executor>,
    index: usize,
    /// Jobs taken off the shared queues, run before taking more.
    local: VecDeque<Arc<Job>>,
}

impl Future for RunnerTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let executor = &this.executor;
        let runner = &executor.runners[this.index];
        let finished = || executor.stopping.load(Ordering::SeqCst) && executor.counters.live.count() == 0;
        let mut budget = BUDGET;
        loop {
            if this.local.is_empty() {
                executor.refill(&mut this.local);
            }
            if let Some(job) = this.local.pop_front() {
                job.run();
                budget -= 1;
                if budget == 0 {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                continue;
            }
            if finished() {
                return Poll::Ready(());
            }
            *lock(&runner.waker) = Some(cx.waker().clone());
            runner.idle.store(true, Ordering::SeqCst);
            if !executor.has_work() && !finished() {
                return Poll::Pending;
            }
            // Work arrived while going idle: take the flag back (if a producer already
            // took it, its wake-up will only cause a spare poll).
            runner.idle.store(false, Ordering::SeqCst);
        }
    }
}

/// Every interleaving of admitting, running and cancelling a job (`--cfg artel_loom`):
/// the executor is driven by hand, one loom thread per runner.
#[cfg(all(test, artel_loom))]
mod loom_models {
    use super::*;
    use crate::cell::Cell;

    /// Runs whatever is runnable until nothing is.
    fn run_all(executor: &Executor) {
        let mut local = VecDeque::new();
        loop {
            executor.refill(&mut local);
            let Some(job) = local.pop_front() else { return };
            job.run();
            while let Some(job) = local.pop_front() {
                job.run();
            }
        }
    }

    #[test]
    fn two_runners_never_both_take_the_last_slot() {
        loom::model(|| {
            let lane = Arc::new(Lane {
                waiting: Mutex::default(),
                wake: Condvar::new(),
                active: Padded(AtomicUsize::new(0)),
                limit: 1,
            });
            let other = {
                let lane = lane.clone();
                loom::thread::spawn(move || lane.reserve(1))
            };
            let mine = lane.reserve(1);
            let theirs = other.join().expect("runner");
            assert_eq!(mine + theirs, 1, "one slot, one taker");
        });
    }

    #[test]
    fn a_job_cancelled_while_a_runner_admits_it_ends_once_and_gives_its_slot_back() {
        loom::model(|| {
            let executor = Executor::new(1, [1, 1], true);
            let cell = Cell::<()>::new();
            let finish = cell.clone();
            executor.counters.pending.fetch_add(1, Ordering::AcqRel);
            executor.counters.live.enter();
            let job = executor.submit(
                LaneId::Async,
                cell.clone(),
                Work::Async(Box::pin(async move {
                    finish.finish(Ok(()));
                })),
            );
            let runner = {
                let executor = executor.clone();
                loom::thread::spawn(move || run_all(&executor))
            };
            if cell.cancel(true) {
                job.reap();
            }
            runner.join().expect("runner");
            run_all(&executor);
            let counters = &executor.counters;
            let ended = counters.succeeded.load(Ordering::SeqCst) + counters.cancelled.load(Ordering::SeqCst);
            assert_eq!(ended, 1, "the job ended exactly once");
            assert_eq!(counters.live.count(), 0, "nothing is left live");
            assert_eq!(counters.pending.load(Ordering::SeqCst), 0, "nothing is left pending");
            assert_eq!(executor.lanes[LaneId::Async as usize].active.load(Ordering::SeqCst), 0, "the slot is free");
        });
    }
}
