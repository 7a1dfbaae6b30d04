//! [`ResultWatch`]: waiting for the results of thousands of tasks at once, as they finish,
//! on one connection — what `artel map`, `App::map_stream` and `GroupResult` read.
//!
//! A backend says how it learns that results were stored through a [`ResultFeed`]: Redis
//! pushes the stored results on their channels, PostgreSQL names the tasks in its
//! notifications, SQLite and memory wake on their own process's stores and otherwise poll. Invariants: a task is reported once, when its
//! result is ready (a final state); a result stored before it was watched is reported
//! too (each follow is followed by a read); and a lost announcement delays a result by
//! at most [`RECHECK`], never loses it (watched tasks are re-read that often).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::broker::BrokerResult;
use crate::result::TaskResult;
use crate::results::ResultBackend;

/// How often every watched task is read again, whatever the feed says.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Ids read with one `get_many`: bounds a request's size on every backend.
const READ_AT_ONCE: usize = 1000;

/// What a feed heard.
#[derive(Debug)]
pub enum Announced {
    /// Results as they were stored (in any state; the watch keeps the ready ones).
    Results(Vec<TaskResult>),
    /// These tasks' results were stored: read those watched.
    Stored(Vec<String>),
    /// Something may have been stored: read the watched tasks.
    Maybe,
    /// Nothing before the deadline.
    Nothing,
}

/// How a backend announces stored results to a [`ResultWatch`].
#[async_trait]
pub trait ResultFeed: Send {
    /// Starts announcing the results of `task_ids` (nothing to do for a feed that hears
    /// every store).
    async fn follow(&mut self, _task_ids: &[String]) -> BrokerResult<()> {
        Ok(())
    }

    /// Stops announcing the results of `task_ids` (they were reported).
    async fn unfollow(&mut self, _task_ids: &[String]) -> BrokerResult<()> {
        Ok(())
    }

    /// Waits until something is announced or `deadline` passes.
    async fn next(&mut self, deadline: Instant) -> BrokerResult<Announced>;
}

/// Stores of results in this process, counted, for feeds and waiters to wake on.
#[derive(Debug, Default)]
pub struct StoreSignal {
    stores: AtomicU64,
    notify: Notify,
}

impl StoreSignal {
    /// Says a result was stored.
    pub fn stored(&self) {
        self.stores.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    /// Wakes at the next store (enable it before reading, as with [`Notify::notified`]).
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    fn count(&self) -> u64 {
        self.stores.load(Ordering::Acquire)
    }

    /// Waits until `read` finds task `task_id` ready: reads again at each store signalled
    /// here and every `poll` (stores this signal does not hear of); a `Timeout` error
    /// after `timeout`.
    pub async fn wait_ready<F, Fut>(
        &self,
        task_id: &str,
        timeout: Duration,
        poll: Duration,
        read: F,
    ) -> BrokerResult<TaskResult>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = BrokerResult<Option<TaskResult>>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            let stored = self.notified();
            tokio::pin!(stored);
            stored.as_mut().enable();
            if let Some(result) = read().await?.filter(|r| r.status.is_ready()) {
                return Ok(result);
            }
            if Instant::now() >= deadline {
                return Err(crate::BrokerError::new(
                    crate::BrokerErrorKind::Timeout,
                    format!("task {task_id} was not ready within {timeout:?}"),
                ));
            }
            let _ = tokio::time::timeout_at(deadline.min(Instant::now() + poll), stored).await;
        }
    }
}

/// A feed that announces nothing by itself: it says "maybe" after a store in this
/// process (`signal`) and every `poll` (stores elsewhere).
#[derive(Debug)]
pub struct PolledFeed {
    signal: Option<Arc<StoreSignal>>,
    /// Stores counted when the watch last read.
    seen: u64,
    poll: Duration,
}

impl PolledFeed {
    /// Wakes on `signal` and every `poll`.
    pub fn new(signal: Option<Arc<StoreSignal>>, poll: Duration) -> Self {
        Self { signal, seen: 0, poll }
    }
}

#[async_trait]
impl ResultFeed for PolledFeed {
    async fn next(&mut self, deadline: Instant) -> BrokerResult<Announced> {
        let wake = deadline.min(Instant::now() + self.poll);
        match &self.signal {
            Some(signal) => {
                let notified = signal.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // A store since the last read, even one before this call, is announced.
                if signal.count() == self.seen {
                    let _ = tokio::time::timeout_at(wake, notified).await;
                }
                self.seen = signal.count();
            }
            None => tokio::time::sleep_until(wake).await,
        }
        Ok(if Instant::now() >= deadline { Announced::Nothing } else { Announced::Maybe })
    }
}

/// The results of many tasks as they become ready.
pub struct ResultWatch {
    backend: Arc<dyn ResultBackend>,
    feed: Box<dyn ResultFeed>,
    watched: HashSet<String>,
    /// Ready results not yet returned by `next`.
    ready: Vec<TaskResult>,
    checked_at: Instant,
}

impl ResultWatch {
    /// A watch on `backend`'s results (opens its feed: a connection on Redis).
    pub async fn new(backend: Arc<dyn ResultBackend>) -> BrokerResult<Self> {
        let feed = backend.feed().await?;
        Ok(Self { backend, feed, watched: HashSet::new(), ready: Vec::new(), checked_at: Instant::now() })
    }

    /// Tasks watched and not yet reported.
    pub fn len(&self) -> usize {
        self.watched.len() + self.ready.len()
    }

    /// Whether nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Watches `task_ids` too; those ready already come out of the next [`ResultWatch::next`].
    pub async fn watch(&mut self, task_ids: &[String]) -> BrokerResult<()> {
        let new: Vec<String> = task_ids.iter().filter(|id| self.watched.insert((*id).clone())).cloned().collect();
        if new.is_empty() {
            return Ok(());
        }
        // Follow first, then read: a result stored in between is seen by one or the other.
        self.feed.follow(&new).await?;
        self.read(&new).await
    }

    /// Waits up to `timeout` for watched tasks to be ready and returns those that are
    /// (each once); empty when none was ready in time.
    ///
    /// # Cancel safety
    /// Cancel safe: results found before the cancel come out of the next call.
    pub async fn next(&mut self, timeout: Duration) -> BrokerResult<Vec<TaskResult>> {
        let deadline = Instant::now() + timeout;
        while self.ready.is_empty() && !self.watched.is_empty() {
            if self.checked_at.elapsed() >= RECHECK {
                self.check_all().await?;
                continue;
            }
            match self.feed.next(deadline.min(self.checked_at + RECHECK)).await? {
                Announced::Results(results) => {
                    for result in results {
                        if result.status.is_ready() && self.watched.remove(&result.task_id) {
                            self.ready.push(result);
                        }
                    }
                }
                Announced::Stored(ids) => {
                    let watched: Vec<String> = ids.into_iter().filter(|id| self.watched.contains(id)).collect();
                    self.read(&watched).await?;
                }
                Announced::Maybe => self.check_all().await?,
                Announced::Nothing if Instant::now() >= deadline => break,
                Announced::Nothing => {}
            }
        }
        if !self.ready.is_empty() {
            let ids: Vec<String> = self.ready.iter().map(|r| r.task_id.clone()).collect();
            self.feed.unfollow(&ids).await?;
        }
        Ok(std::mem::take(&mut self.ready))
    }

    async fn check_all(&mut self) -> BrokerResult<()> {
        self.checked_at = Instant::now();
        let ids: Vec<String> = self.watched.iter().cloned().collect();
        self.read(&ids).await
    }

    /// Reads `ids` and moves the ready ones from `watched` to `ready`.
    async fn read(&mut self, ids: &[String]) -> BrokerResult<()> {
        for chunk in ids.chunks(READ_AT_ONCE) {
            let results = self.backend.get_many(chunk).await?;
            for (id, result) in chunk.iter().zip(results) {
                if let Some(mut result) = result.filter(|r| r.status.is_ready()) {
                    if self.watched.remove(id) {
                        result.task_id.clone_from(id);
                        self.ready.push(result);
                    }
                }
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for ResultWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultWatch").field("watched", &self.watched.len()).field("ready", &self.ready.len()).finish()
    }
}
