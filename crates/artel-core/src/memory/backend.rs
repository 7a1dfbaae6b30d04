use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::broker::{BrokerResult, ResultBackend};
use crate::error::{BrokerError, BrokerErrorKind};
use crate::result::TaskResult;

/// In-process result backend with TTLs and push-based waiting; clones share results.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    results: HashMap<String, Stored>,
    /// One wake-up per task somebody waits on; removed when the task is ready.
    waiters: HashMap<String, Arc<Notify>>,
    stores_since_sweep: u32,
}

#[derive(Debug)]
struct Stored {
    result: TaskResult,
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
        Ok(true)
    }

    async fn get(&self, task_id: &str) -> BrokerResult<Option<TaskResult>> {
        Ok(self.lock().live(task_id).cloned())
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
