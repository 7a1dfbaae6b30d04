//! Records the worker's counters, timings, settings and longest-running tasks through the
//! broker's [`WorkerRegistry`] every few seconds (what `artel stats` and the dashboard
//! read), stops the worker (warm) when a stop was asked of it there, and removes the
//! record when the worker stops.

use std::sync::Arc;
use std::time::Duration;

use artel_core::WorkerRegistry;
use async_trait::async_trait;
use serde_json::{Value, json};

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
            match self.registry.report_worker(&scope.name, &report(scope)).await {
                Ok(false) => {}
                Ok(true) => {
                    tracing::warn!(
                        "a stop was asked of this worker (dashboard): finishing running tasks, then stopping"
                    );
                    scope.stop.warm.cancel();
                }
                Err(error) => tracing::warn!(%error, "could not record the worker heartbeat"),
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

/// How many running tasks a report lists: the longest running (a worker with 10,000 in
/// flight would otherwise write megabytes every report; `active` counts them all).
const RUNNING_LISTED: usize = 20;

/// The worker's counters and timings (`WorkerStats::to_json`), with its settings and the
/// tasks that have run longest of those it runs now.
fn report(scope: &Scope) -> Value {
    let mut report = scope.stats.to_json();
    let control = &scope.control;
    let mut active = control.active();
    if active.len() > RUNNING_LISTED {
        active.select_nth_unstable_by(RUNNING_LISTED, |a, b| a.started.total_cmp(&b.started));
        active.truncate(RUNNING_LISTED);
    }
    active.sort_by(|a, b| a.started.total_cmp(&b.started));
    let running: Vec<Value> = active
        .into_iter()
        .map(|active| {
            let task = active.task;
            json!({"id": task.id, "name": task.name, "args": task.args, "started": active.started})
        })
        .collect();
    let processes = control.processes().map(|p| json!({"pids": p.pids, "size": p.size}));
    if let Value::Object(fields) = &mut report {
        fields.insert("concurrency".into(), json!(control.concurrency()));
        fields.insert("prefetch".into(), json!(control.prefetch()));
        fields.insert("queues".into(), json!(control.queues()));
        fields.insert("pid".into(), json!(std::process::id()));
        fields.insert("pool".into(), json!(if processes.is_some() { "processes" } else { "async" }));
        fields.insert("processes".into(), processes.unwrap_or(Value::Null));
        fields.insert("running".into(), Value::Array(running));
    }
    report
}
