//! A process pool's children, parent side: started on demand (at most one per slot of
//! the pool), lent to one driver's batch at a time, recycled after `max_tasks_per_child`
//! calls or past `max_memory_per_child` (read after each batch), killed when a call
//! overruns or is cancelled while running.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::VecDeque;

use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use tokio::io::BufReader;
use tokio::net::UnixListener;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::Command;

use super::child::CHILD_ENV;
use super::frame::{self, Reply, Request};
use crate::error::JobError;

/// Builds the command that starts a child (the current executable by default).
pub(crate) type Launcher = Arc<dyn Fn() -> Command + Send + Sync>;

/// How children are started and when they are replaced.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) launcher: Launcher,
    pub(crate) max_tasks_per_child: Option<u32>,
    pub(crate) max_memory_per_child: Option<u64>,
    pub(crate) start_timeout: Duration,
    pub(crate) kill_grace: Duration,
}

/// What happened to children since the pool started.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) started: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) recycled: AtomicU64,
    pub(crate) killed: AtomicU64,
}

/// One child process and its connection; dropping it closes the connection (the child
/// exits) and kills the process if it has not.
pub(crate) struct Child {
    /// Buffered: a reply's length and body arrive in one read.
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    process: tokio::process::Child,
    pid: u32,
    calls: u32,
    /// Where it counts itself alive until dropped.
    alive: Alive,
}

/// Pids of the children alive now.
type Alive = Arc<Mutex<BTreeSet<u32>>>;

impl Drop for Child {
    fn drop(&mut self) {
        self.alive.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.pid);
    }
}

pub(crate) struct Children {
    settings: Settings,
    idle: Mutex<Vec<Child>>,
    alive: Alive,
    /// One permit per child that may run at once; resized by `resize`.
    slots: Arc<Semaphore>,
    size: AtomicUsize,
    /// Calls waiting to be sent to a child, oldest first.
    queue: Mutex<VecDeque<Pending>>,
    pub(crate) counts: Counts,
}

/// Calls sent to a child at once, when that many wait: the child runs them one after
/// another and answers in order, so its socket's round trip is paid once per batch.
const BATCH: usize = 8;

/// A call waiting for a child, and where its answer goes.
struct Pending {
    request: Request,
    limit: Option<Duration>,
    answer: oneshot::Sender<Result<Reply, JobError>>,
}

/// Numbers the sockets children connect to, unique in this process (every pool's).
static NEXT_SOCKET: AtomicU64 = AtomicU64::new(0);

impl Children {
    pub(crate) fn new(settings: Settings, size: usize) -> Self {
        Self {
            settings,
            idle: Mutex::default(),
            alive: Alive::default(),
            slots: Arc::new(Semaphore::new(size)),
            size: AtomicUsize::new(size),
            queue: Mutex::default(),
            counts: Counts::default(),
        }
    }

    /// Pids of every child alive now, idle or busy.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.alive.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect()
    }

    /// How many children may run at once.
    pub(crate) fn size(&self) -> usize {
        self.size.load(Ordering::Acquire)
    }

    /// Slots free now.
    pub(crate) fn free(&self) -> usize {
        self.slots.available_permits()
    }

    /// Calls waiting to be sent to a child.
    pub(crate) fn queued(&self) -> usize {
        self.queue().len()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Calls after which a child is replaced, if set.
    pub(crate) fn max_tasks_per_child(&self) -> Option<u32> {
        self.settings.max_tasks_per_child
    }

    /// Grows or shrinks how many children run at once (never below one); returns the new
    /// size. Shrinking takes effect as running calls end: their slots are retired.
    pub(crate) fn resize(&self, delta: i64) -> usize {
        let mut current = self.size();
        loop {
            let wanted = usize::try_from((current as i64).saturating_add(delta).max(1)).unwrap_or(1);
            match self.size.compare_exchange(current, wanted, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    if wanted > current {
                        self.slots.add_permits(wanted - current);
                    } else if wanted < current {
                        let (slots, retired) =
                            (self.slots.clone(), u32::try_from(current - wanted).unwrap_or(u32::MAX));
                        tokio::spawn(async move {
                            if let Ok(permits) = slots.acquire_many_owned(retired).await {
                                permits.forget();
                            }
                        });
                        let mut idle = self.idle();
                        let keep = idle.len().min(wanted);
                        idle.truncate(keep);
                    }
                    return wanted;
                }
                Err(now) => current = now,
            }
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Child>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pids of the children waiting for a call.
    pub(crate) fn idle_pids(&self) -> Vec<u32> {
        self.idle().iter().map(|c| c.pid).collect()
    }

    /// Ends every idle child (they exit when their connection closes).
    pub(crate) fn close(&self) {
        self.idle().clear();
    }

    /// Queues `request` (within `limit`) and makes sure a driver (one per free slot) will
    /// send it; the answer arrives on the receiver. Dropping the receiver cancels the
    /// call; if it was running, its child is killed. Call inside the pool's runtime.
    pub(crate) fn enqueue(
        self: &Arc<Self>,
        request: Request,
        limit: Option<Duration>,
    ) -> oneshot::Receiver<Result<Reply, JobError>> {
        let (answer, answered) = oneshot::channel();
        self.queue().push_back(Pending { request, limit, answer });
        self.drive();
        answered
    }

    /// Starts a driver if a slot is free (inside the pool's runtime).
    pub(crate) fn drive(self: &Arc<Self>) {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            tokio::spawn(self.clone().driver(slot));
        }
    }

    /// Sends queued calls to a child in batches until none waits, then gives its slot
    /// back. A call queued after the last look took no slot (this driver held it), so
    /// the queue is looked at again after the slot is given back.
    async fn driver(self: Arc<Self>, mut slot: OwnedSemaphorePermit) {
        loop {
            while let Some(batch) = self.next_batch() {
                self.run_batch(batch).await;
            }
            drop(slot);
            if self.queue().is_empty() {
                return;
            }
            match self.slots.clone().try_acquire_owned() {
                Ok(again) => slot = again,
                Err(_) => return,
            }
        }
    }

    /// The next calls to send together: up to [`BATCH`] without a time limit, or one with
    /// a limit alone (its timer must measure its own run). Calls cancelled while queued
    /// are dropped here.
    fn next_batch(&self) -> Option<Vec<Pending>> {
        let mut queue = self.queue();
        queue.retain(|p| !p.answer.is_closed());
        let first = queue.pop_front()?;
        let mut batch = vec![first];
        if batch[0].limit.is_none() {
            while batch.len() < BATCH && queue.front().is_some_and(|p| p.limit.is_none()) {
                batch.extend(queue.pop_front());
            }
        }
        Some(batch)
    }

    /// Puts calls that were never started back at the head of the queue, in order.
    fn requeue(&self, calls: impl DoubleEndedIterator<Item = Pending>) {
        let mut queue = self.queue();
        for call in calls.rev() {
            queue.push_front(call);
        }
    }

    /// Sends `batch` to one child and hands out its answers in order.
    async fn run_batch(&self, mut batch: Vec<Pending>) {
        let taken = self.idle().pop();
        let mut child = match taken {
            Some(child) => child,
            None => match self.start().await {
                Ok(child) => child,
                Err(why) => {
                    for call in batch {
                        let _ = call.answer.send(Err(JobError::WorkerLost(why.clone())));
                    }
                    return;
                }
            },
        };
        // A child near its share takes only what it has left.
        if let Some(max) = self.settings.max_tasks_per_child {
            let left = max.saturating_sub(child.calls).max(1) as usize;
            if batch.len() > left {
                self.requeue(batch.split_off(left).into_iter());
            }
        }
        let requests: Vec<&Request> = batch.iter().map(|p| &p.request).collect();
        if child.send(&requests).await.is_err() {
            // Died while idle: the first call is the one it failed.
            let first = batch.remove(0);
            self.lose(child, first).await;
            self.requeue(batch.into_iter());
            return;
        }
        let mut calls = batch.into_iter();
        while let Some(mut call) = calls.next() {
            // Replies come in order: while this one is awaited, this call is running.
            let reply = tokio::select! {
                reply = child.receive() => Some(reply),
                _ = call.answer.closed() => None,
                _ = sleep_for(call.limit) => {
                    let limit = call.limit.unwrap_or_default();
                    self.counts.killed.fetch_add(1, Ordering::Relaxed);
                    child.terminate(self.settings.kill_grace).await;
                    let _ = call.answer.send(Err(JobError::TimedOut(limit)));
                    self.requeue(calls);
                    return;
                }
            };
            match reply {
                // Cancelled while running (a worker's hard limit, a terminate): its child
                // goes with it, asked first (SIGTERM), killed after the grace.
                None => {
                    self.counts.killed.fetch_add(1, Ordering::Relaxed);
                    child.terminate(self.settings.kill_grace).await;
                    self.requeue(calls);
                    return;
                }
                Some(Ok(reply)) => {
                    child.calls += 1;
                    let _ = call.answer.send(Ok(reply));
                }
                Some(Err(_)) => {
                    self.lose(child, call).await;
                    self.requeue(calls);
                    return;
                }
            }
        }
        self.give_back(child);
    }

    /// Fails `call` with why its child died.
    async fn lose(&self, child: Child, call: Pending) {
        self.counts.lost.fetch_add(1, Ordering::Relaxed);
        let why = child.lost().await;
        let _ = call.answer.send(Err(JobError::WorkerLost(why)));
    }

    /// Keeps a child for the next call unless it has served its share or grown too big.
    fn give_back(&self, child: Child) {
        let worn = self.settings.max_tasks_per_child.is_some_and(|max| child.calls >= max);
        let bloated = self.settings.max_memory_per_child.is_some_and(|max| rss(child.pid).is_some_and(|rss| rss > max));
        if worn || bloated {
            self.counts.recycled.fetch_add(1, Ordering::Relaxed);
            return; // dropped: its connection closes and it exits
        }
        let mut idle = self.idle();
        if idle.len() < self.size() {
            idle.push(child);
        }
    }

    /// Starts a child and waits for it to connect; why not, if it cannot.
    async fn start(&self) -> Result<Child, String> {
        let n = NEXT_SOCKET.fetch_add(1, Ordering::Relaxed);
        let path: PathBuf = std::env::temp_dir().join(format!("artel-pool-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        let mut command = (self.settings.launcher)();
        command.env(CHILD_ENV, &path).kill_on_drop(true).stdin(std::process::Stdio::null());
        let spawned = command.spawn();
        let connected = match spawned {
            Err(e) => Err(format!("cannot start a child process: {e}")),
            Ok(mut process) => {
                let timeout = self.settings.start_timeout;
                tokio::select! {
                    accepted = tokio::time::timeout(timeout, listener.accept()) => match accepted {
                        Ok(Ok((stream, _))) => {
                            let pid = process.id().unwrap_or_default();
                            let (reader, writer) = stream.into_split();
                            self.alive.lock().unwrap_or_else(|e| e.into_inner()).insert(pid);
                            let alive = self.alive.clone();
                            Ok(Child { reader: BufReader::new(reader), writer, process, pid, calls: 0, alive })
                        }
                        Ok(Err(e)) => Err(format!("the child could not connect: {e}")),
                        Err(_) => Err(format!(
                            "the child did not connect within {timeout:?}: its program must call artel_pool::serve_if_child first thing in main"
                        )),
                    },
                    status = process.wait() => Err(format!(
                        "the child exited before connecting ({}): its program must call artel_pool::serve_if_child first thing in main",
                        status.map_or_else(|e| e.to_string(), describe)
                    )),
                }
            }
        };
        let _ = std::fs::remove_file(&path);
        if connected.is_ok() {
            self.counts.started.fetch_add(1, Ordering::Relaxed);
        }
        connected
    }
}

impl Child {
    /// Sends `requests` in one write.
    async fn send(&mut self, requests: &[&Request]) -> std::io::Result<()> {
        let mut frames = Vec::new();
        for request in requests {
            frames.extend(frame::encode(request)?);
        }
        self.writer.write_all(&frames).await
    }

    /// The next reply.
    async fn receive(&mut self) -> std::io::Result<Reply> {
        frame::read(&mut self.reader).await
    }

    /// Asks the child to stop (SIGTERM), then kills it after `grace`.
    async fn terminate(mut self, grace: Duration) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid.try_into().unwrap_or(0)) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        if tokio::time::timeout(grace, self.process.wait()).await.is_err() {
            let _ = self.process.kill().await;
        }
    }

    /// Why a child broke its connection, once it has exited (or been killed for not).
    async fn lost(mut self) -> String {
        let pid = self.pid;
        match tokio::time::timeout(Duration::from_secs(2), self.process.wait()).await {
            Ok(Ok(status)) => format!("the process running the task ({pid}) {}", describe(status)),
            _ => {
                let _ = self.process.kill().await;
                format!("the process running the task ({pid}) stopped answering and was killed")
            }
        }
    }
}

/// Waits `limit`, or forever without one.
async fn sleep_for(limit: Option<Duration>) {
    match limit {
        Some(limit) => tokio::time::sleep(limit).await,
        None => std::future::pending().await,
    }
}

/// An exit status as a person would say it.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}{}", signal_name(signal)),
        (None, None) => "ended".to_owned(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        6 => " (SIGABRT)",
        9 => " (SIGKILL: out of memory, or killed)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

/// A process's resident memory in bytes, from `/proc` (Linux); `None` elsewhere.
pub(crate) fn rss(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}
