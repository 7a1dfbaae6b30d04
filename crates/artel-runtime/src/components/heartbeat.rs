//! Keeps the leases of the messages a worker holds (prefetched or running) from lapsing,
//! so no other worker runs them while this one lives.

use std::sync::Arc;

use artel_core::Heartbeat;
use async_trait::async_trait;

use artel_core::worker::{Component, ComponentError, Scope, TaskObserver};

/// Beats a consumer's heartbeat until the worker's tasks have finished.
#[derive(Debug)]
pub(crate) struct LeaseHeartbeat {
    pub(crate) heartbeat: Arc<dyn Heartbeat>,
    pub(crate) observer: Option<Arc<dyn TaskObserver>>,
}

#[async_trait]
impl Component for LeaseHeartbeat {
    fn name(&self) -> &'static str {
        "lease heartbeat"
    }

    async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
        loop {
            match self.heartbeat.beat().await {
                Ok(()) => self.observer.iter().for_each(|o| o.leases_renewed()),
                Err(e) => {
                    self.observer.iter().for_each(|o| o.broker_error(e.kind()));
                    tracing::warn!(error = %e, "could not extend leases; held messages may be delivered again");
                }
            }
            if !scope.sleep(self.heartbeat.every()).await {
                return Ok(());
            }
        }
    }
}
