use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::broker::BrokerResult;
use crate::error::{BrokerError, BrokerErrorKind};
use crate::result::TaskResult;
use crate::results::{Chords, ResultBackend, Revocation, Revocations};
use crate::watch::{PolledFeed, ResultFeed, StoreSignal};

/// In-process result backend with TTLs and push-based waiting; clones share results.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Announces ready results to watches.
    ready: Arc<StoreSignal>,
}

#[derive(Debug, Default)]
struct State {
    results: HashMap<String, Stored>,
    /// One wake-up per task somebody waits on; removed when the task is ready.
    waiters: HashMap<String, Arc<Notify>>,
    stores_since_sweep: u32,
    /// Chord members recorded so far, by group id then member index.
    chords: HashMap<String, Chord>,
    /// Live revocations in order; a cursor counts from the first ever recorded.
    revocations: std::collections::VecDeque<Revocation>,
    /// Revocations dropped from the front after expiring.
    revocations_dropped: u64,
}

#[derive(Debug)]
struct Stored {
    result: TaskResult,
    expires_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct Chord {
    parts: BTreeMap<u32, TaskResult>,
    expires_at: Option<Instant>,
}

/// Expired results are swept after this many stores, keeping memory bounded by live results.
const SWEEP_EVERY: u32 = 1024;

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn live(&mut self, task_id: &str) -> Option<&TaskResult> {
        let expired = self.results.get(task_id)?.expires_at.is_some_and(|at| at <= Instant::now());
        if expired {
            self.results.remove(task_id);
            return None;
        }
        self.results.get(task_id).map(|s| &s.result)
    }

    fn sweep(&mut self) {
        let now = Instant::now();
        self.results.retain(|_, s| s.expires_at.is_none_or(|at| at > now));
        self.chords.retain(|_, c| c.expires_at.is_none_or(|at| at > now));
        self.stores_since_sweep = 0;
    }
}

#[async_trait]
impl ResultBackend for MemoryBackend {
    async fn store(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<bool> {
        let mut state = self.lock();
        if let Some(current) = state.live(&result.task_id) {
            if !current.status.can_transition_to(result.status) {
                return Ok(false);
            }
        }
        let expires_at = ttl.map(|ttl| Instant::now() + ttl);
        state.results.insert(result.task_id.clone(), Stored { result: result.clone(), expires_at });
        state.stores_since_sweep += 1;
        if state.stores_since_sweep >= SWEEP_EVERY {
            state.sweep();
        }
        let waiter = if result.status.is_ready() {
            state.waiters.remove(&result.task_id)
        } else {
            state.waiters.get(&result.task_id).cloned()
        };
        drop(state);
        if let Some(waiter) = waiter {
            waiter.notify_waiters();
        }
        if result.status.is_ready() {
            self.shared.ready.stored();
        }
        Ok(true)
    }

    async fn get(&self, task_id: &str) -> BrokerResult<Option<TaskResult>> {
        Ok(self.lock().live(task_id).cloned())
    }

    async fn get_many(&self, task_ids: &[String]) -> BrokerResult<Vec<Option<TaskResult>>> {
        let mut state = self.lock();
        Ok(task_ids.iter().map(|id| state.live(id).cloned()).collect())
    }

    /// Every ready result is announced; the poll only bounds a missed wake-up.
    async fn feed(&self) -> BrokerResult<Box<dyn ResultFeed>> {
        Ok(Box::new(PolledFeed::new(Some(self.shared.ready.clone()), crate::watch::RECHECK)))
    }

    async fn wait(&self, task_id: &str, timeout: Duration) -> BrokerResult<TaskResult> {
        let deadline = Instant::now() + timeout;
        loop {
            let waiter = {
                let mut state = self.lock();
                if let Some(result) = state.live(task_id).filter(|r| r.status.is_ready()) {
                    return Ok(result.clone());
                }
                state.waiters.entry(task_id.to_owned()).or_default().clone()
            };
            let notified = waiter.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Re-check: a store between the unlock and `enable` would otherwise be missed.
            if let Some(result) = self.lock().live(task_id).filter(|r| r.status.is_ready()) {
                return Ok(result.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(BrokerError::new(
                    BrokerErrorKind::Timeout,
                    format!("task {task_id} was not ready within {timeout:?}"),
                ));
            }
        }
    }
}

#[async_trait]
impl Chords for MemoryBackend {
    async fn chord_part(
        &self,
        group_id: &str,
        index: u32,
        size: Option<u32>,
        result: &TaskResult,
        ttl: Option<Duration>,
    ) -> BrokerResult<Option<Vec<TaskResult>>> {
        let size = size.ok_or_else(|| crate::results::unknown_chord_size(group_id))?;
        let mut state = self.lock();
        let chord = state.chords.entry(group_id.to_owned()).or_default();
        chord.parts.insert(index, result.clone());
        chord.expires_at = ttl.map(|ttl| Instant::now() + ttl);
        let complete = u32::try_from(chord.parts.len()).is_ok_and(|n| n >= size);
        Ok(complete.then(|| chord.parts.values().cloned().collect()))
    }
}

#[async_trait]
impl Revocations for MemoryBackend {
    async fn revoke(&self, revocation: &Revocation) -> BrokerResult<()> {
        let mut state = self.lock();
        let now = chrono::Utc::now();
        while state.revocations.front().is_some_and(|r| r.expires_at < now) {
            state.revocations.pop_front();
            state.revocations_dropped += 1;
        }
        state.revocations.push_back(revocation.clone());
        Ok(())
    }

    async fn revocations(&self, cursor: u64) -> BrokerResult<(Vec<Revocation>, u64)> {
        let state = self.lock();
        let skip = usize::try_from(cursor.saturating_sub(state.revocations_dropped)).unwrap_or(usize::MAX);
        let next = state.revocations_dropped + state.revocations.len() as u64;
        let now = chrono::Utc::now();
        let live = state.revocations.iter().skip(skip).filter(|r| r.expires_at > now).cloned().collect();
        Ok((live, next))
    }
}
