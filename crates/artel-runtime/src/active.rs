//! The tasks a worker is running now: what `inspect active` lists, and where a revoke
//! with terminate reaches a running task. A run is registered for exactly as long as its
//! guard lives.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use artel_core::{Cancelled, Context, HeldTask, Message, lock};
use tokio_util::sync::CancellationToken;

use artel_core::worker::ActiveTask;

/// The running tasks, by registration, and those waiting for their rate limit.
#[derive(Debug, Default)]
pub(crate) struct ActiveTasks {
    running: Mutex<HashMap<u64, Running>>,
    waiting: Mutex<HashMap<u64, HeldTask>>,
    serial: AtomicU64,
}

/// A task waiting for its rate limit, listed as reserved until dropped.
#[derive(Debug)]
pub(crate) struct WaitingGuard<'a> {
    active: &'a ActiveTasks,
    serial: u64,
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.active.waiting).remove(&self.serial);
    }
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
    active: &'a ActiveTasks,
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
        lock(&self.active.running).remove(&self.serial);
    }
}

impl ActiveTasks {
    /// Registers a task about to run, so a terminate can reach it and `list` shows it.
    pub(crate) fn register(&self, ctx: &Context, message: &Message) -> RunningGuard<'_> {
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
        RunningGuard { active: self, serial, terminate }
    }

    /// Lists `message`'s task as reserved while the guard lives (it waits for a slot its
    /// rate limit allows).
    pub(crate) fn wait(&self, message: &Message) -> WaitingGuard<'_> {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        lock(&self.waiting).insert(serial, HeldTask::of(message));
        WaitingGuard { active: self, serial }
    }

    /// The tasks waiting for their rate limit.
    pub(crate) fn waiting(&self) -> Vec<HeldTask> {
        lock(&self.waiting).values().cloned().collect()
    }

    /// The tasks running now.
    pub(crate) fn list(&self) -> Vec<ActiveTask> {
        lock(&self.running)
            .values()
            .map(|r| ActiveTask {
                task: HeldTask {
                    id: r.ctx.id().to_owned(),
                    name: r.ctx.task().to_owned(),
                    args: r.args.clone(),
                    kwargs: r.kwargs.clone(),
                    routing_key: r.routing_key.clone(),
                    priority: r.priority,
                    eta: None,
                },
                started: r.started,
            })
            .collect()
    }

    /// Stops the running tasks with these ids (revoked with terminate).
    pub(crate) fn terminate(&self, ids: &[String]) {
        for task in lock(&self.running).values().filter(|t| ids.iter().any(|id| id == t.ctx.id())) {
            tracing::info!(id = %task.ctx.id(), "terminating a revoked task");
            task.ctx.cancel(Cancelled::Revoked);
            task.terminate.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_core::{Clock, SystemClock};

    #[test]
    fn a_running_task_is_listed_until_its_guard_drops_and_terminate_reaches_it() {
        let active = ActiveTasks::default();
        let ctx = Context::detached("busy", "t");
        let message = artel_core::Signature::new("t").task_id("busy").to_message(SystemClock.now(), "test");
        let guard = active.register(&ctx, &message);
        let listed = active.list();
        assert_eq!((listed.len(), listed[0].task.id.as_str(), listed[0].task.name.as_str()), (1, "busy", "t"));
        active.terminate(&["other".to_owned()]);
        assert!(!guard.terminate().is_cancelled(), "only the ids named");
        active.terminate(&["busy".to_owned()]);
        assert!(guard.terminate().is_cancelled());
        assert_eq!(ctx.cancel_reason(), Some(Cancelled::Revoked));
        drop(guard);
        assert!(active.list().is_empty());
    }
}
