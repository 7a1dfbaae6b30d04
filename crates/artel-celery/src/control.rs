//! Remote control over kombu's pidbox (docs/wire-format.md §f): `celery inspect` / `celery control`
//! and Flower reach an artel worker through the `celery.pidbox` fanout and get their
//! replies through the client's reply queue, over whichever [`Wire`] the broker has. The
//! answers are [`Responder`]'s, the same on every broker.

use std::sync::Arc;

use artel_core::worker::remote::{ControlRequest, RemoteEvents, Responder};
use artel_core::worker::{Component, ComponentError, Scope, WorkerStats};

use crate::events::EventPublisher;
use crate::wire::Wire;

/// The worker component that answers `celery inspect` / `celery control` and Flower.
#[derive(Debug)]
pub struct RemoteControl {
    /// Where the pidbox requests arrive and replies go.
    pub wire: Arc<dyn Wire>,
    /// The worker's events: a `heartbeat` request sends one, `enable_events` and
    /// `disable_events` turn its task events on and off.
    pub events: Arc<EventPublisher>,
}

impl RemoteEvents for EventPublisher {
    fn set_task_events(&self, on: bool) -> bool {
        EventPublisher::set_task_events(self, on)
    }

    fn heartbeat(&self, stats: &WorkerStats) {
        EventPublisher::heartbeat(self, stats);
    }
}

#[async_trait::async_trait]
impl Component for RemoteControl {
    fn name(&self) -> &'static str {
        "remote control"
    }

    /// Serves the requests addressed to this worker until the worker stops.
    async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
        let wire = &self.wire;
        let failed = |e: artel_core::BrokerError| ComponentError::Failed(e.to_string());
        let mut mailbox = wire.mailbox(&scope.name).await.map_err(failed)?;
        let events = self.events.clone() as Arc<dyn RemoteEvents>;
        let responder = Responder::new(
            scope.name.clone(),
            scope.control.clone(),
            scope.stop.clone(),
            wire.broker_info(),
            Some(events),
        );
        loop {
            let body = tokio::select! {
                _ = scope.shutdown.cancelled() => break,
                body = mailbox.recv() => body,
            };
            let Some(body) = body else { break };
            let request = match ControlRequest::decode(&body) {
                Ok(request) => request,
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring a malformed remote-control request");
                    continue;
                }
            };
            let Some((clock, reply)) = responder.respond(&request) else { continue };
            if let (Some(ticket), Some(to)) = (request.ticket(), request.reply_to())
                && let Err(e) = wire.reply(to, ticket, clock, &reply).await
            {
                tracing::warn!(error = %e, method = request.method(), "could not send a remote-control reply");
            }
        }
        wire.close_mailbox(&scope.name).await;
        Ok(())
    }
}
