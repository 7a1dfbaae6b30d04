//! Reads revocations from the result backend so revoked tasks are skipped (and running
//! ones stopped when asked) on every worker.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::component::{Component, ComponentError, Scope};
use crate::execute::Dispatcher;

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
        let executor = &self.executor;
        executor
            .revoked
            .poll(executor.backend.as_ref(), executor.clock.as_ref(), self.every, scope.shutdown.clone())
            .await;
        Ok(())
    }
}
