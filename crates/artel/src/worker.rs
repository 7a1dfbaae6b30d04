//! A worker on a [`Connection`] with every component its broker allows, the same whether
//! it runs as `artel worker` or inside a program of its own: reports for `artel stats`
//! (where the broker keeps worker reports), revocations, answers to `artel inspect`/`control`
//! on the native brokers, and on Celery's layouts answers to `celery inspect`/`control`
//! and Flower, plus task events.

use std::sync::Arc;
use std::time::Duration;

use artel_core::Registry;
use artel_runtime::{BoardControl, BurstWatcher, StatsReporter, Worker, WorkerConfig};

use crate::connect::Connection;

/// How often the worker records its counters for `artel stats`.
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// How often the worker looks for `artel inspect`/`control` requests (a client waits a
/// second for replies).
const BOARD_EVERY: Duration = Duration::from_millis(100);

/// Why a worker could not be assembled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerSetupError {
    /// Burst mode needs counts of unfinished messages.
    #[error("burst mode needs a broker that can count unfinished messages (sqlite:// or redis://)")]
    BurstUnsupported,
    /// Events go where Celery's monitors listen.
    #[error("events need a celery+redis:// or amqp:// broker (events go where Celery's monitors listen)")]
    EventsUnsupported,
}

/// Assembles a [`Worker`] on a connection; see [`Connection::worker`].
#[derive(Debug)]
pub struct WorkerBuilder<'a> {
    connection: &'a Connection,
    registry: Arc<Registry>,
    config: WorkerConfig,
    burst: bool,
    events: bool,
    heartbeats: bool,
    #[cfg(feature = "metrics")]
    metrics: Option<std::net::SocketAddr>,
}

impl Connection {
    /// A worker for `registry`'s tasks on this connection, with `config`'s settings.
    pub fn worker(&self, registry: Registry, config: WorkerConfig) -> WorkerBuilder<'_> {
        WorkerBuilder {
            connection: self,
            registry: Arc::new(registry),
            config,
            burst: false,
            events: false,
            heartbeats: true,
            #[cfg(feature = "metrics")]
            metrics: None,
        }
    }
}

impl WorkerBuilder<'_> {
    /// Stop once the queues are drained and nothing runs (RQ's burst mode).
    pub fn burst(mut self, on: bool) -> Self {
        self.burst = on;
        self
    }

    /// Send task events for Celery's monitors from the start (Celery's `-E`); on Celery's
    /// layouts `celery control enable_events`/`disable_events` turn them on and off later.
    pub fn events(mut self, on: bool) -> Self {
        self.events = on;
        self
    }

    /// On Celery's layouts, send worker-online, a heartbeat every 2 s and worker-offline,
    /// as a Celery worker does unless started `--without-heartbeat`; on by default.
    pub fn heartbeats(mut self, on: bool) -> Self {
        self.heartbeats = on;
        self
    }

    /// Serve Prometheus metrics on `listen` (`GET /metrics`; names in docs/metrics.md).
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, listen: Option<std::net::SocketAddr>) -> Self {
        self.metrics = listen;
        self
    }

    /// The worker with its components.
    pub fn build(self) -> Result<Worker, WorkerSetupError> {
        #[cfg(feature = "metrics")]
        let (mut config, metrics) = {
            let metrics = self.metrics.map(|listen| (listen, Arc::new(artel_metrics::Metrics::new())));
            let mut config = self.config;
            if let Some((_, metrics)) = &metrics {
                config.observer = Some(metrics.clone() as Arc<dyn artel_core::worker::TaskObserver>);
            }
            (config, metrics)
        };
        #[cfg(not(feature = "metrics"))]
        let mut config = self.config;
        #[cfg_attr(not(feature = "celery"), allow(unused_variables))]
        let Self { connection, registry, burst, events, heartbeats, .. } = self;
        #[cfg_attr(not(feature = "celery"), allow(unused_variables))]
        let name = config.name.get_or_insert_with(artel_runtime::default_worker_name).clone();
        let inspect = match (burst, connection.backend.inspect()) {
            (false, _) => None,
            (true, Some(inspect)) => Some(inspect.clone()),
            (true, None) => return Err(WorkerSetupError::BurstUnsupported),
        };
        #[cfg(feature = "celery")]
        let events = match (events, &connection.wire) {
            (_, Some(wire)) => {
                let on = artel_celery::EventsOn { tasks: events, heartbeats };
                Some(artel_celery::EventPublisher::new(wire.clone(), name, on))
            }
            (false, None) => None,
            (true, None) => return Err(WorkerSetupError::EventsUnsupported),
        };
        #[cfg(not(feature = "celery"))]
        if events {
            return Err(WorkerSetupError::EventsUnsupported);
        }
        #[cfg(feature = "celery")]
        if let Some((publisher, _)) = &events {
            config.events = Some(artel_core::events::also(config.events.take(), publisher.clone()));
        }
        let mut worker = Worker::new(&connection.backend, registry, config);
        if let Some(workers) = connection.backend.workers() {
            worker = worker.with_component(StatsReporter { registry: workers.clone(), every: REPORT_EVERY });
        }
        if let Some(inspect) = inspect {
            worker = worker.with_component(BurstWatcher { inspect });
        }
        if let Some(board) = connection.backend.control_board() {
            let broker = connection.broker_info.clone();
            worker = worker.with_component(BoardControl { board: board.clone(), broker, every: BOARD_EVERY });
        }
        #[cfg(feature = "metrics")]
        if let Some((listen, metrics)) = metrics {
            worker = worker.with_component(artel_metrics::MetricsServer::new(listen, metrics));
        }
        #[cfg(feature = "celery")]
        {
            if let (Some(wire), Some((publisher, event_loop))) = (&connection.wire, events) {
                worker = worker.with_component(artel_celery::RemoteControl { wire: wire.clone(), events: publisher });
                worker = worker.with_component(event_loop);
            }
        }
        Ok(worker)
    }
}
