//! Burst mode (RQ's): the worker stops by itself once its queues are drained.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use artel_core::Inspect;
use async_trait::async_trait;

use artel_core::worker::{Component, ComponentError, Scope};

/// How often the queues are looked at.
const EVERY: Duration = Duration::from_millis(100);

/// Stops the worker (warm) once its queues hold nothing ready or delayed and nothing
/// runs; a count that cannot be read counts as work left.
#[derive(Debug)]
pub struct BurstWatcher {
    /// Counts of unfinished messages.
    pub inspect: Arc<dyn Inspect>,
}

#[async_trait]
impl Component for BurstWatcher {
    fn name(&self) -> &'static str {
        "burst watcher"
    }

    async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
        loop {
            if !scope.sleep(EVERY).await {
                return Ok(());
            }
            let mut waiting = 0;
            for queue in scope.control.queues() {
                waiting += self.inspect.unfinished(&queue, 1).await.unwrap_or(1);
            }
            if waiting == 0 && scope.stats.active.load(Ordering::Relaxed) == 0 {
                scope.stop.warm.cancel();
                return Ok(());
            }
        }
    }
}
