//! [`Metrics`]: the metric families, and the per-(task, queue) handles the hot path uses.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use artel_core::BrokerErrorKind;
use artel_core::worker::{Outcome, TaskObserver, WorkerStats};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the run-time and queue-wait buckets, in seconds.
const BUCKETS: [f64; 16] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

const OUTCOMES: [Outcome; 10] = [
    Outcome::Succeeded,
    Outcome::Failed,
    Outcome::Retried,
    Outcome::DeadLettered,
    Outcome::Expired,
    Outcome::Revoked,
    Outcome::Deferred,
    Outcome::HandedBack,
    Outcome::Ignored,
    Outcome::Cached,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: String,
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    task: String,
    queue: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The series of one (task, queue) pair.
#[derive(Debug)]
struct Series {
    received: Counter,
    redelivered: Counter,
    outcomes: [Counter; OUTCOMES.len()],
    runtime: Histogram,
    waited: Histogram,
}

/// A worker's metrics; report to it as the worker's observer, read them with
/// [`Metrics::encode`].
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    received: Family<TaskLabels, Counter>,
    redelivered: Family<TaskLabels, Counter>,
    outcomes: Family<OutcomeLabels, Counter>,
    runtime: Family<TaskLabels, Histogram, fn() -> Histogram>,
    waited: Family<TaskLabels, Histogram, fn() -> Histogram>,
    broker_errors: Family<KindLabels, Counter>,
    lease_renewals: Counter,
    held: Gauge,
    running: Gauge,
    series: RwLock<HashMap<String, HashMap<String, Arc<Series>>>>,
}

impl Metrics {
    /// Every family registered, no series yet; `artel_worker_up` is 1 and the start time
    /// is now.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let received = Family::<TaskLabels, Counter>::default();
        let redelivered = Family::<TaskLabels, Counter>::default();
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        let runtime = Family::<TaskLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        let waited = Family::<TaskLabels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
        let broker_errors = Family::<KindLabels, Counter>::default();
        let (lease_renewals, held, running) = (Counter::default(), Gauge::default(), Gauge::default());
        let (up, started) = (Gauge::<i64>::default(), Gauge::<f64, std::sync::atomic::AtomicU64>::default());
        up.set(1);
        started.set(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()));
        let r = &mut registry;
        r.register("artel_tasks", "Messages settled, by task, queue and outcome", outcomes.clone());
        r.register("artel_tasks_received", "Messages taken from the queue", received.clone());
        r.register(
            "artel_tasks_redelivered",
            "Messages taken again after a delivery without an outcome",
            redelivered.clone(),
        );
        r.register("artel_task_runtime_seconds", "How long runs took", runtime.clone());
        r.register("artel_task_queue_wait_seconds", "From publish (or ETA) to the start of the run", waited.clone());
        r.register("artel_tasks_running", "Runs in progress", running.clone());
        r.register(
            "artel_tasks_held",
            "Messages taken and not yet settled (running or waiting in the worker)",
            held.clone(),
        );
        r.register("artel_lease_renewals", "Renewals of the leases of held messages", lease_renewals.clone());
        r.register("artel_broker_errors", "Failed broker and result-store operations, by kind", broker_errors.clone());
        r.register("artel_worker_up", "1 while the worker runs", up);
        r.register("artel_worker_start_time_seconds", "When the worker started (unix seconds)", started);
        Self {
            registry,
            received,
            redelivered,
            outcomes,
            runtime,
            waited,
            broker_errors,
            lease_renewals,
            held,
            running,
            series: RwLock::default(),
        }
    }

    /// The metrics in the OpenMetrics text format, `stats` giving the running gauge.
    pub fn encode(&self, stats: Option<&WorkerStats>) -> String {
        if let Some(stats) = stats {
            let active = stats.active.load(std::sync::atomic::Ordering::Relaxed);
            self.running.set(i64::try_from(active).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// The series of (`task`, `queue`), built on first use.
    fn series(&self, task: &str, queue: &str) -> Arc<Series> {
        let found = self.series.read().unwrap_or_else(|e| e.into_inner()).get(task).and_then(|q| q.get(queue)).cloned();
        if let Some(series) = found {
            return series;
        }
        let labels = TaskLabels { task: task.to_owned(), queue: queue.to_owned() };
        let outcome = |outcome: Outcome| {
            let labels = OutcomeLabels { task: task.to_owned(), queue: queue.to_owned(), outcome: outcome.as_str() };
            self.outcomes.get_or_create(&labels).clone()
        };
        let series = Arc::new(Series {
            received: self.received.get_or_create(&labels).clone(),
            redelivered: self.redelivered.get_or_create(&labels).clone(),
            outcomes: OUTCOMES.map(outcome),
            runtime: self.runtime.get_or_create(&labels).clone(),
            waited: self.waited.get_or_create(&labels).clone(),
        });
        let mut all = self.series.write().unwrap_or_else(|e| e.into_inner());
        all.entry(task.to_owned()).or_default().entry(queue.to_owned()).or_insert(series).clone()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn kind_label(kind: BrokerErrorKind) -> &'static str {
    match kind {
        BrokerErrorKind::Connection => "connection",
        BrokerErrorKind::Timeout => "timeout",
        BrokerErrorKind::Conflict => "conflict",
        BrokerErrorKind::NotFound => "not_found",
        BrokerErrorKind::Unsupported => "unsupported",
        BrokerErrorKind::Corrupt => "corrupt",
        BrokerErrorKind::Closed => "closed",
        BrokerErrorKind::StorageFull => "storage_full",
        _ => "other",
    }
}

impl TaskObserver for Metrics {
    fn received(&self, task: &str, queue: &str, redelivered: bool) {
        let series = self.series(task, queue);
        series.received.inc();
        if redelivered {
            series.redelivered.inc();
        }
        self.held.inc();
    }

    fn started(&self, task: &str, queue: &str, waited: Option<Duration>) {
        if let Some(waited) = waited {
            self.series(task, queue).waited.observe(waited.as_secs_f64());
        }
    }

    fn ran(&self, task: &str, queue: &str, runtime: Duration) {
        self.series(task, queue).runtime.observe(runtime.as_secs_f64());
    }

    fn finished(&self, task: &str, queue: &str, outcome: Outcome) {
        let index = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(0);
        self.series(task, queue).outcomes[index].inc();
        self.held.dec();
    }

    fn broker_error(&self, kind: BrokerErrorKind) {
        self.broker_errors.get_or_create(&KindLabels { kind: kind_label(kind) }).inc();
    }

    fn leases_renewed(&self) {
        self.lease_renewals.inc();
    }
}
