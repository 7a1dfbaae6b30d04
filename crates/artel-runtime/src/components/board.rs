//! Answers `artel inspect` / `artel control` on a native broker: reads the requests
//! posted on its [`ControlBoard`] since the worker started, and posts the replies the
//! [`Responder`] gives (the answers `celery inspect` gets over a Celery transport).

use std::sync::Arc;
use std::time::Duration;

use artel_core::worker::remote::{ControlBoard, ControlRequest, Responder};
use artel_core::worker::{Component, ComponentError, Scope};
use async_trait::async_trait;
use serde_json::Value;

/// Serves remote control through `board`, looking for requests every `every`.
#[derive(Debug)]
pub struct BoardControl {
    /// Where requests are posted and replies kept.
    pub board: Arc<dyn ControlBoard>,
    /// The broker as `inspect stats` and `inspect conf` describe it (`transport`,
    /// `hostname`, `port`, `virtual_host`; no credentials).
    pub broker: Value,
    /// How often to look for requests (a client waits a second for replies).
    pub every: Duration,
}

/// After a failed read, how long to wait before the next.
const AFTER_ERROR: Duration = Duration::from_secs(1);

#[async_trait]
impl Component for BoardControl {
    fn name(&self) -> &'static str {
        "remote control"
    }

    async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
        let responder =
            Responder::new(scope.name.clone(), scope.control.clone(), scope.stop.clone(), self.broker.clone(), None);
        let mut cursor = None;
        let mut failing = false;
        loop {
            let pause = match self.board.requests_after(cursor.as_deref()).await {
                Ok((next, requests)) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("remote-control requests can be read again");
                    }
                    cursor = Some(next);
                    for body in requests {
                        self.serve(&responder, &body).await;
                    }
                    self.every
                }
                Err(error) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(%error, "could not read remote-control requests; trying again every second");
                    }
                    AFTER_ERROR
                }
            };
            if !scope.sleep(pause).await {
                return Ok(());
            }
        }
    }
}

impl BoardControl {
    async fn serve(&self, responder: &Responder, body: &[u8]) {
        let request = match ControlRequest::decode(body) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a malformed remote-control request");
                return;
            }
        };
        let (Some((_, reply)), Some(ticket)) = (responder.respond(&request), request.ticket()) else { return };
        if let Err(e) = self.board.post_reply(ticket, &reply).await {
            tracing::warn!(error = %e, method = request.method(), "could not send a remote-control reply");
        }
    }
}
