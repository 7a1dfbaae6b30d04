//! Keeps the leases of the messages a worker holds (prefetched or running) from lapsing,
//! so no other worker runs them while this one lives.

use std::sync::Arc;

use artel_core::Heartbeat;
use async_trait::async_trait;

use artel_core::worker::{Component, ComponentError, Scope};

/// Beats a consumer's heartbeat until the worker's tasks have finished.
#[derive(Debug)]
pub(crate) struct LeaseHeartbeat {
    pub(crate) heartbeat: Arc<dyn Heartbeat>,
}

#[async_trait]
impl Component for LeaseHeartbeat {
    fn name(&self) -> &'static str {
        "lease heartbeat"
    }

    async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
        loop {
            if let Err(e) = self.heartbeat.beat().await {
                tracing::warn!(error = %e, "could not extend leases; held messages may be delivered again");
            }
            if !scope.sleep(self.heartbeat.every()).await {
                return Ok(());
            }
        }
    }
}
