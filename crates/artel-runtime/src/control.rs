//! The runtime's [`WorkerControl`]: remote control reads and revokes through the dispatcher.

use std::sync::Arc;

use artel_core::worker::{ActiveTask, ProcessesInfo, TuneError, WorkerControl, WorkerStats};
use artel_core::{HeldTask, Revocation};

use crate::execute::Dispatcher;

/// A handle on a running worker; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Handle {
    pub(crate) executor: Arc<Dispatcher>,
    pub(crate) prefetch: usize,
}

impl Handle {
    /// Whether this worker runs `task`.
    fn known(&self, task: &str) -> Result<(), TuneError> {
        match self.executor.registry.get(task) {
            Some(_) => Ok(()),
            None => Err(TuneError::UnknownTask),
        }
    }
}

impl WorkerControl for Handle {
    fn stats(&self) -> Arc<WorkerStats> {
        self.executor.stats.clone()
    }

    fn active(&self) -> Vec<ActiveTask> {
        self.executor.active.list()
    }

    fn reserved(&self) -> Vec<HeldTask> {
        let mut reserved = self.executor.active.waiting();
        reserved.extend(self.executor.holdings().map(|h| h.reserved()).unwrap_or_default());
        reserved
    }

    fn scheduled(&self) -> Vec<HeldTask> {
        self.executor.holdings().map(|h| h.scheduled()).unwrap_or_default()
    }

    fn registered(&self) -> Vec<String> {
        self.executor.registry.names().into_iter().map(str::to_owned).collect()
    }

    fn queues(&self) -> Vec<String> {
        self.executor.queues.borrow().clone()
    }

    fn add_queue(&self, queue: &str) -> bool {
        let added = self.executor.queues.send_if_modified(|queues| {
            let new = !queues.iter().any(|q| q == queue);
            if new {
                queues.push(queue.to_owned());
            }
            new
        });
        tracing::info!(queue, added, "consuming a queue more, asked by remote control");
        added
    }

    fn cancel_queue(&self, queue: &str) -> bool {
        let cancelled = self.executor.queues.send_if_modified(|queues| {
            let before = queues.len();
            queues.retain(|q| q != queue);
            queues.len() != before
        });
        tracing::info!(queue, cancelled, "no longer consuming a queue, asked by remote control");
        cancelled
    }

    fn conf(&self) -> serde_json::Map<String, serde_json::Value> {
        let executor = &self.executor;
        let secs = |limit: Option<std::time::Duration>| limit.map(|d| d.as_secs_f64());
        let json = serde_json::json!({
            // Celery counts processes where tasks run in them.
            "worker_concurrency": self.processes().map_or(self.concurrency(), |children| children.size),
            "worker_prefetch_multiplier": (self.prefetch / self.concurrency()).max(1),
            "worker_pool": if executor.processes.is_some() { "processes" } else { "artel" },
            "task_queues": self.queues(),
            "task_time_limit": secs(executor.limits.hard),
            "task_soft_time_limit": secs(executor.limits.soft),
            "task_track_started": executor.track_started,
            "result_expires": secs(executor.result_ttl),
            "worker_send_task_events": executor.events.as_ref().is_some_and(|sink| sink.listening()),
            "artel_max_deliveries": executor.max_deliveries,
            "artel_max_message_bytes": executor.max_message_bytes,
        });
        match json {
            serde_json::Value::Object(conf) => conf,
            _ => serde_json::Map::new(),
        }
    }

    fn concurrency(&self) -> usize {
        self.executor.slots.size()
    }

    fn prefetch(&self) -> usize {
        self.prefetch
    }

    fn revoke(&self, ids: &[String], terminate: bool) {
        let expires_at = self.executor.clock.now() + chrono::Duration::days(1);
        let revocations =
            ids.iter().map(|id| Revocation { task_id: id.clone(), terminate, expires_at }).collect::<Vec<_>>();
        let terminate = self.executor.revoked.apply(revocations, self.executor.clock.now());
        self.executor.active.terminate(&terminate);
    }

    fn revoked(&self) -> Vec<String> {
        self.executor.revoked.ids()
    }

    fn set_rate_limit(&self, task: &str, rate: Option<&str>) -> Result<(), TuneError> {
        self.known(task)?;
        self.executor.tuning.set_rate_limit(task, rate).map_err(TuneError::Invalid)?;
        tracing::info!(task, rate = rate.unwrap_or("off"), "rate limit changed by remote control");
        Ok(())
    }

    fn set_time_limits(&self, task: &str, soft: Option<f64>, hard: Option<f64>) -> Result<(), TuneError> {
        self.known(task)?;
        self.executor.tuning.set_time_limits(task, soft, hard).map_err(TuneError::Invalid)?;
        tracing::info!(task, ?soft, ?hard, "time limits changed by remote control");
        Ok(())
    }

    fn processes(&self) -> Option<ProcessesInfo> {
        let (pool, _) = self.executor.processes.as_ref()?;
        Some(ProcessesInfo { pids: pool.pids(), size: pool.size(), max_tasks_per_child: pool.max_tasks_per_child() })
    }

    fn resize(&self, delta: i64) -> usize {
        let size = self.executor.slots.resize(delta);
        if let Some(holdings) = self.executor.holdings() {
            holdings.resize_prefetch(delta);
        }
        // Children and slots grow and shrink together: a child without a slot idles.
        if let Some((pool, _)) = &self.executor.processes {
            pool.resize(delta);
        }
        tracing::info!(size, "concurrency changed by remote control");
        size
    }
}
