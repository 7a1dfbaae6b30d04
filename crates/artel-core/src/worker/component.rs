//! A worker's background loops, one shape: a component is built from its parameters and
//! runs until its scope's `shutdown` fires. The worker (artel-runtime) supervises each one:
//!
//! * returning `Ok` ends it (its work is done, or `shutdown` fired);
//! * [`ComponentError::Failed`] or a panic restarts it after a backoff that doubles from
//!   100 ms to 30 s (reset once it has run a minute), logged each time;
//! * [`ComponentError::Fatal`] stops the worker (warm): it cannot do its job at all.
//!
//! `shutdown` fires once the worker has stopped fetching and its tasks have finished (or
//! been stopped), so reporters see the whole grace period and say goodbye last.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::control::WorkerControl;
use super::stats::WorkerStats;

/// How a worker is told to stop.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// Warm: stop fetching, let running tasks finish (up to the grace period), hand back
    /// prefetched messages.
    pub warm: CancellationToken,
    /// Cold: stop now. Running tasks are dropped (async ones stop at their next await,
    /// their child processes are killed) and their messages go back to the queue; a
    /// blocking task's thread cannot be stopped, so its message is held until the thread
    /// ends, or until its lease lapses once the process has exited.
    pub cold: CancellationToken,
}

impl Stop {
    /// Fires both: used when a warm stop is not wanted.
    pub fn now(&self) {
        self.warm.cancel();
        self.cold.cancel();
    }
}

/// What a component may see and do of its worker.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Fires when the component is to end.
    pub shutdown: CancellationToken,
    /// Stops the worker (a burst watcher, a remote `shutdown`).
    pub stop: Stop,
    /// The worker's node name.
    pub name: String,
    /// Live counters.
    pub stats: Arc<WorkerStats>,
    /// Active tasks, revokes, queues, registered tasks.
    pub control: Arc<dyn WorkerControl>,
}

impl Scope {
    /// Waits `pause`; false when shutdown fired first (the component is to end).
    pub async fn sleep(&self, pause: Duration) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = tokio::time::sleep(pause) => true,
        }
    }
}

/// Why a component's run ended early.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// It failed this time; run it again after a pause.
    #[error("{0}")]
    Failed(String),
    /// It can never run (misconfigured): the worker stops.
    #[error("{0}")]
    Fatal(String),
}

/// A background loop of a worker; see the module docs.
#[async_trait]
pub trait Component: Send + Sync + std::fmt::Debug + 'static {
    /// Its name in logs.
    fn name(&self) -> &'static str;

    /// Runs until `scope.shutdown` fires or it fails.
    async fn run(&self, scope: &Scope) -> Result<(), ComponentError>;
}
