//! The worker's revoked set: kept current by polling the result backend, consulted before
//! each run, and able to terminate tasks that are running.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use artel_core::{BrokerResult, Cancelled, Context, Message, ResultBackend, Revocation, Timestamp};

use crate::control::ActiveTask;
use tokio_util::sync::CancellationToken;

/// Revoked ids (until their expiry) and the tasks running now.
#[derive(Debug, Default)]
pub(crate) struct Revoked {
    ids: Mutex<HashMap<String, Timestamp>>,
    running: Mutex<HashMap<u64, Running>>,
    serial: AtomicU64,
    cursor: AtomicU64,
}

#[derive(Debug)]
struct Running {
    /// Ids and cancellation (the task's own context).
    ctx: Context,
    /// What `inspect active` shows beyond the ids.
    args: String,
    kwargs: String,
    started: f64,
    routing_key: String,
    priority: u8,
    terminate: CancellationToken,
}

/// Registration of a running task; deregisters on drop.
#[derive(Debug)]
pub(crate) struct RunningGuard<'a> {
    revoked: &'a Revoked,
    serial: u64,
    terminate: CancellationToken,
}

impl RunningGuard<'_> {
    /// Fires when the task is revoked with terminate.
    pub(crate) fn terminate(&self) -> &CancellationToken {
        &self.terminate
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        lock(&self.revoked.running).remove(&self.serial);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Revoked {
    /// Whether task `id` was revoked.
    pub(crate) fn contains(&self, id: &str) -> bool {
        lock(&self.ids).contains_key(id)
    }

    /// Registers a task about to run, so a terminate can reach it and `active` lists it.
    pub(crate) fn running(&self, ctx: &Context, message: &Message) -> RunningGuard<'_> {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let terminate = CancellationToken::new();
        let entry = Running {
            ctx: ctx.clone(),
            args: message.headers.argsrepr.clone().unwrap_or_default(),
            kwargs: message.headers.kwargsrepr.clone().unwrap_or_default(),
            started: artel_core::time::unix_seconds(),
            routing_key: message.queue().to_owned(),
            priority: message.properties.priority,
            terminate: terminate.clone(),
        };
        lock(&self.running).insert(serial, entry);
        RunningGuard { revoked: self, serial, terminate }
    }

    /// The tasks running now.
    pub(crate) fn active(&self) -> Vec<ActiveTask> {
        lock(&self.running)
            .values()
            .map(|r| ActiveTask {
                id: r.ctx.id().to_owned(),
                name: r.ctx.task().to_owned(),
                args: r.args.clone(),
                kwargs: r.kwargs.clone(),
                started: r.started,
                routing_key: r.routing_key.clone(),
                priority: r.priority,
            })
            .collect()
    }

    /// The ids revoked and not yet forgotten.
    pub(crate) fn ids(&self) -> Vec<String> {
        lock(&self.ids).keys().cloned().collect()
    }

    /// Takes in new revocations: remembers them and terminates running tasks they name.
    pub(crate) fn apply(&self, revocations: Vec<Revocation>, now: Timestamp) {
        let mut ids = lock(&self.ids);
        ids.retain(|_, expires| *expires > now);
        let running = lock(&self.running);
        for r in revocations {
            if r.terminate {
                for task in running.values().filter(|t| t.ctx.id() == r.task_id) {
                    tracing::info!(id = %r.task_id, "terminating a revoked task");
                    task.ctx.cancel(Cancelled::Revoked);
                    task.terminate.cancel();
                }
            }
            ids.insert(r.task_id, r.expires_at);
        }
    }

    /// Reads every revocation recorded since the last call.
    pub(crate) async fn refresh(&self, backend: &dyn ResultBackend, now: Timestamp) -> BrokerResult<()> {
        loop {
            let cursor = self.cursor.load(Ordering::Acquire);
            let (revocations, next) = backend.revocations(cursor).await?;
            let more = next != cursor && !revocations.is_empty();
            self.apply(revocations, now);
            self.cursor.store(next, Ordering::Release);
            if !more {
                return Ok(());
            }
        }
    }

    /// Polls for revocations every `every` until `stop` fires.
    pub(crate) async fn poll(
        &self,
        backend: &dyn ResultBackend,
        clock: &dyn artel_core::Clock,
        every: Duration,
        stop: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.refresh(backend, clock.now()).await {
                tracing::warn!(error = %e, "could not read revocations; retrying at the next poll");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_core::memory::MemoryBackend;
    use artel_core::{Clock, SystemClock};

    #[tokio::test]
    async fn revocations_are_remembered_and_terminate_reaches_running_tasks() {
        let backend = MemoryBackend::new();
        let revoked = Revoked::default();
        let now = SystemClock.now();
        let later = now + chrono::Duration::hours(1);
        let ctx = Context::detached("busy", "t");
        let message = artel_core::Signature::new("t").task_id("busy").to_message(now, "test");
        let guard = revoked.running(&ctx, &message);
        let active = revoked.active();
        assert_eq!((active.len(), active[0].id.as_str(), active[0].name.as_str()), (1, "busy", "t"));
        for (id, terminate) in [("queued", false), ("busy", true)] {
            let r = Revocation { task_id: id.to_owned(), terminate, expires_at: later };
            backend.revoke(&r).await.expect("revoke");
        }
        revoked.refresh(&backend, now).await.expect("refresh");
        assert!(revoked.contains("queued") && revoked.contains("busy") && !revoked.contains("other"));
        assert!(guard.terminate().is_cancelled());
        assert_eq!(ctx.cancel_reason(), Some(Cancelled::Revoked));
        revoked.refresh(&backend, later + chrono::Duration::seconds(1)).await.expect("refresh");
        assert!(!revoked.contains("queued"), "forgotten after expiry");
    }
}
