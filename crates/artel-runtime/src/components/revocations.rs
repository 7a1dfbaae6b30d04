//! Reads revocations from the result backend so revoked tasks are skipped (and running
//! ones stopped when asked) on every worker.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::execute::Dispatcher;
use artel_core::worker::{Component, ComponentError, Scope};

/// Polls the backend's revocations every `every`.
#[derive(Debug)]
pub(crate) struct RevocationPoller {
    pub(crate) executor: Arc<Dispatcher>,
    pub(crate) every: Duration,
}

#[async_trait]
impl Component for RevocationPoller {
    fn name(&self) -> &'static str {
        "revocation poller"
    }

    async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
        loop {
            if !scope.sleep(self.every).await {
                return Ok(());
            }
            if let Err(e) = self.executor.read_revocations().await {
                tracing::warn!(error = %e, "could not read revocations; retrying at the next poll");
            }
        }
    }
}
