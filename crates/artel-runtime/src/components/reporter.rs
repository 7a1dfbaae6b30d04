//! Records the worker's counters and timings through the broker's [`Admin`] capability
//! every few seconds (what `artel stats` reads), and removes the record when the worker
//! stops.

use std::sync::Arc;
use std::time::Duration;

use artel_core::WorkerRegistry;
use async_trait::async_trait;

use artel_core::worker::{Component, ComponentError, Scope};

/// Reports the worker to `registry` every `every` (2 s is what `artel stats` expects).
#[derive(Debug)]
pub struct StatsReporter {
    /// Where worker reports are kept.
    pub registry: Arc<dyn WorkerRegistry>,
    /// How often to report.
    pub every: Duration,
}

#[async_trait]
impl Component for StatsReporter {
    fn name(&self) -> &'static str {
        "stats reporter"
    }

    async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
        loop {
            if let Err(error) = self.registry.report_worker(&scope.name, &scope.stats.to_json()).await {
                tracing::warn!(%error, "could not record the worker heartbeat");
            }
            if !scope.sleep(self.every).await {
                break;
            }
        }
        if let Err(error) = self.registry.worker_gone(&scope.name).await {
            tracing::warn!(%error, "could not remove the worker's report");
        }
        Ok(())
    }
}
