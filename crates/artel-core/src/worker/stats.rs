//! What a worker has done: counters and per-task run times.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

/// Run times kept per task for percentiles; older samples are overwritten in a ring.
const SAMPLES: usize = 4_096;

/// Counters of a worker since it started, plus per-task timings.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Messages taken off the queue.
    pub received: AtomicU64,
    /// Tasks running now.
    pub active: AtomicU64,
    /// Tasks that returned a value.
    pub succeeded: AtomicU64,
    /// Tasks that failed (including time limits and panics).
    pub failed: AtomicU64,
    /// Retries scheduled.
    pub retried: AtomicU64,
    /// Messages dead-lettered as bad input.
    pub rejected: AtomicU64,
    /// Expired messages discarded without running.
    pub expired: AtomicU64,
    /// Revoked messages discarded without running.
    pub revoked: AtomicU64,
    timings: Mutex<HashMap<String, Timing>>,
}

#[derive(Debug, Default)]
struct Timing {
    count: u64,
    total: Duration,
    max: Duration,
    ring: Vec<Duration>,
}

/// Run-time summary of one task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaskTiming {
    /// Runs measured.
    pub count: u64,
    /// Mean run time.
    pub mean: Duration,
    /// Median of the recent runs.
    pub p50: Duration,
    /// 99th percentile of the recent runs.
    pub p99: Duration,
    /// Longest run.
    pub max: Duration,
}

impl WorkerStats {
    /// Records one run of `task` that took `took`.
    pub fn record(&self, task: &str, took: Duration) {
        let mut timings = self.timings.lock().unwrap_or_else(|e| e.into_inner());
        let t = timings.entry(task.to_owned()).or_default();
        let slot = (t.count % SAMPLES as u64) as usize;
        if t.ring.len() < SAMPLES {
            t.ring.push(took);
        } else {
            t.ring[slot] = took;
        }
        t.count += 1;
        t.total += took;
        t.max = t.max.max(took);
    }

    /// Per-task timings, sorted by task name.
    pub fn timings(&self) -> Vec<(String, TaskTiming)> {
        let timings = self.timings.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, TaskTiming)> = timings
            .iter()
            .map(|(name, t)| {
                let mut sorted = t.ring.clone();
                sorted.sort_unstable();
                let pick = |q: f64| {
                    sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default()
                };
                let mean = t.total / u32::try_from(t.count.max(1)).unwrap_or(u32::MAX);
                (name.clone(), TaskTiming { count: t.count, mean, p50: pick(0.5), p99: pick(0.99), max: t.max })
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Everything as JSON (what `artel stats` shows).
    pub fn to_json(&self) -> Value {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let tasks: serde_json::Map<String, Value> = self
            .timings()
            .into_iter()
            .map(|(name, t)| {
                let v = json!({"count": t.count, "mean_ms": ms(t.mean), "p50_ms": ms(t.p50), "p99_ms": ms(t.p99), "max_ms": ms(t.max)});
                (name, v)
            })
            .collect();
        json!({
            "received": load(&self.received),
            "active": load(&self.active),
            "succeeded": load(&self.succeeded),
            "failed": load(&self.failed),
            "retried": load(&self.retried),
            "rejected": load(&self.rejected),
            "expired": load(&self.expired),
            "revoked": load(&self.revoked),
            "tasks": tasks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_samples() {
        let stats = WorkerStats::default();
        for ms in 1..=100 {
            stats.record("t", Duration::from_millis(ms));
        }
        let (name, t) = stats.timings().pop().expect("one task");
        assert_eq!(name, "t");
        assert_eq!(t.count, 100);
        assert_eq!(t.p50, Duration::from_millis(51));
        assert_eq!(t.p99, Duration::from_millis(99));
        assert_eq!(t.max, Duration::from_millis(100));
        assert_eq!(t.mean, Duration::from_micros(50_500));
    }
}
