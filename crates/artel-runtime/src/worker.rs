//! [`Worker`]: fetch from a broker, run on a [`Pool`], until told to stop.

use std::sync::Arc;
use std::time::Duration;

use artel_core::{Backend, Broker, BrokerError, Clock, Consumer, DEFAULT_QUEUE, Queues, Registry, SystemClock};
use artel_pool::Pool;
use tokio_util::sync::CancellationToken;

use crate::active::ActiveTasks;
use crate::components::{LeaseHeartbeat, RevocationPoller};
use crate::control::Handle;
use crate::execute::Dispatcher;
use crate::process::ProcessSettings;
use crate::revoke::Revoked;
use crate::supervise::Limits;
use crate::supervisor;
use artel_core::EventSink;
use artel_core::worker::{Component, Scope, Stop, TaskObserver, WorkerControl, WorkerStats};

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Queues to consume, most important first.
    pub queues: Vec<String>,
    /// Tasks running at once.
    pub concurrency: usize,
    /// Messages the broker may hand out ahead of a free slot.
    pub prefetch: usize,
    /// How long results are kept (Celery's `result_expires`; [`artel_core::RESULT_EXPIRES`] by default).
    pub result_ttl: Option<Duration>,
    /// On a warm stop, how long running tasks may take to finish before the worker
    /// stops them (their messages go back to the queue once they are stopped).
    pub grace: Duration,
    /// Store STARTED (with the worker's pid and hostname) when a task starts, as Celery's
    /// `task_track_started`; off by default because it costs one more write per task.
    pub track_started: bool,
    /// Store RECEIVED when a message is taken, before rate limits and the run; off by
    /// default (one more write per task).
    pub track_received: bool,
    /// Hard time limit for tasks whose call and declaration set none (`--time-limit`).
    pub time_limit: Option<Duration>,
    /// Soft time limit for tasks whose call and declaration set none.
    pub soft_time_limit: Option<Duration>,
    /// How often revocations are read from the result backend: the longest a revoke
    /// takes to reach this worker.
    pub revoke_poll: Duration,
    /// Where task events go (Celery's `-E`); none by default.
    pub events: Option<Arc<dyn EventSink>>,
    /// Record each task's latest state in the backend's task history (the dashboard's
    /// task lists), where the backend keeps one; on by default.
    pub history: bool,
    /// Hears how each message ended (Prometheus metrics); none by default.
    pub observer: Option<Arc<dyn TaskObserver>>,
    /// The worker's node name, recorded with its results, failed tasks and the messages
    /// it publishes; `artel.<pid>@<host>` when unset.
    pub name: Option<String>,
    /// A message delivered this many times without an outcome (its worker died each
    /// time: crash, out of memory, kill) is dead-lettered as `WorkerLostError` instead of
    /// run again; tasks may declare their own (`max_deliveries`). 0 turns this off.
    pub max_deliveries: u32,
    /// A message whose body is larger is dead-lettered with the reason instead of decoded
    /// (16 MiB by default).
    pub max_message_bytes: usize,
    /// Most runs of one group (a tenant's `group_key`) at once across every worker, for
    /// tasks that declare none (`max_running_per_group`); `None`: not capped.
    pub max_running_per_group: Option<u32>,
    /// Child processes for tasks (`--pool processes`); when unset and a registered task
    /// is declared `process`, those tasks get one child per CPU.
    pub processes: Option<ProcessSettings>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            queues: vec![DEFAULT_QUEUE.to_owned()],
            concurrency: 100,
            prefetch: 100,
            result_ttl: Some(artel_core::RESULT_EXPIRES),
            grace: Duration::from_secs(30),
            track_started: false,
            track_received: false,
            time_limit: None,
            soft_time_limit: None,
            revoke_poll: Duration::from_millis(200),
            events: None,
            history: true,
            observer: None,
            name: None,
            max_deliveries: 5,
            max_message_bytes: 16 << 20,
            max_running_per_group: None,
            processes: None,
        }
    }
}

/// Consumes tasks and runs them, with its background components; see [`Worker::run`].
#[derive(Debug)]
pub struct Worker {
    broker: Arc<dyn Broker>,
    executor: Arc<Dispatcher>,
    config: WorkerConfig,
    components: Vec<Arc<dyn Component>>,
}

/// The process pool the tasks need, if any: the configured one, or one child per CPU
/// when some registered task is declared `process`.
fn child_processes(config: &WorkerConfig, registry: &Registry) -> Option<(Arc<artel_pool::ProcessPool>, bool)> {
    let declared =
        || registry.names().into_iter().any(|n| registry.get(n).is_some_and(|h| h.options().process == Some(true)));
    let settings = config.processes.clone().or_else(|| {
        declared().then(|| ProcessSettings {
            all_tasks: false,
            processes: std::thread::available_parallelism().map_or(1, usize::from),
            max_tasks_per_child: None,
            max_memory_per_child: None,
            env: Vec::new(),
            program: None,
        })
    })?;
    match settings.start() {
        Ok(pool) => Some((Arc::new(pool), settings.all_tasks)),
        Err(error) => {
            tracing::error!(%error, "cannot start the process pool: tasks meant for child processes run in this one");
            None
        }
    }
}

/// Pauses after transient broker errors: doubling from the first to the last.
const FETCH_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// After a cold stop, how long stopped runs get to hand their messages back before the
/// worker returns anyway (a broker that does not answer must not hold up the exit).
const HAND_BACK: Duration = Duration::from_millis(1500);

impl Worker {
    /// A worker for `registry`'s tasks on `backend`'s broker, storing results, counting
    /// chords and reading revocations in its stores.
    pub fn new(backend: &Backend, registry: Arc<Registry>, config: WorkerConfig) -> Self {
        Self::with_clock(backend, registry, config, Arc::new(SystemClock))
    }

    /// [`Worker::new`] reading time from `clock`.
    pub fn with_clock(backend: &Backend, registry: Arc<Registry>, config: WorkerConfig, clock: Arc<dyn Clock>) -> Self {
        let (broker, results) = (backend.broker().clone(), backend.results().clone());
        let processes = child_processes(&config, &registry);
        // Store and ack in one step only where the backend is the broker's own store.
        let results_in_broker = broker.store_identity().is_some_and(|id| results.store_identity() == Some(id));
        let origin = config.name.clone().unwrap_or_else(crate::default_worker_name);
        let mut components: Vec<Arc<dyn Component>> = Vec::new();
        let mut events = config.events.clone();
        if let Some(store) = backend.history().filter(|_| config.history) {
            let (recorder, writer) = crate::components::history(store.clone(), origin.clone(), clock.clone());
            components.push(Arc::new(writer));
            events = Some(artel_core::events::also(events, Arc::new(recorder)));
        }
        let executor = Dispatcher {
            registry,
            broker: broker.clone(),
            backend: results,
            chords: backend.chords().clone(),
            revocations: backend.revocations().clone(),
            clock,
            result_ttl: config.result_ttl,
            results_in_broker,
            track_started: config.track_started,
            track_received: config.track_received,
            limits: Limits { soft: config.soft_time_limit, hard: config.time_limit },
            stats: Arc::default(),
            rate_limits: Default::default(),
            tuning: Default::default(),
            holdings: Default::default(),
            slots: crate::slots::Slots::new(config.concurrency),
            queues: tokio::sync::watch::Sender::new(config.queues.clone()),
            revoked: Revoked::default(),
            active: ActiveTasks::default(),
            origin,
            events,
            stop_runs: CancellationToken::new(),
            max_deliveries: config.max_deliveries,
            max_message_bytes: config.max_message_bytes,
            max_running_per_group: config.max_running_per_group,
            processes,
            locks: backend.locks().map(|server| server.locks(crate::exclusive::MUTEX_LEASE)),
            unique: backend.unique().cloned(),
            rates: backend.rate_limits().cloned(),
            cache: crate::memo::cache_of(backend),
            observer: config.observer.clone(),
        };
        let executor = Arc::new(executor);
        components.push(Arc::new(RevocationPoller { executor: executor.clone(), every: config.revoke_poll }));
        Self { broker, executor, config, components }
    }

    /// This worker with `component` running beside it, supervised (see [`Component`]).
    pub fn with_component(mut self, component: impl Component) -> Self {
        self.components.push(Arc::new(component));
        self
    }

    /// The worker's node name.
    pub fn name(&self) -> &str {
        &self.executor.origin
    }

    /// Live counters.
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.executor.stats.clone()
    }

    /// A handle for remote control: active tasks, revoke, registered tasks, stats.
    pub fn control(&self) -> Arc<dyn WorkerControl> {
        Arc::new(Handle { executor: self.executor.clone(), prefetch: self.config.prefetch })
    }

    /// Starts the components, then runs until `stop.warm` fires: stops fetching and waits
    /// for the tasks in flight (at most the grace period, or until `stop.cold` fires), then
    /// shuts the components down and waits for them.
    ///
    /// Returns an error only when the broker fails in a way retrying cannot fix.
    pub async fn run(self, pool: &Pool, stop: Stop) -> Result<(), BrokerError> {
        // Revocations made while no worker ran must hold before the first task.
        let executor = &self.executor;
        if let Err(e) = executor.read_revocations().await {
            tracing::warn!(error = %e, "could not read revocations at start; polling will retry");
        }
        let mut subscribed = executor.queues.subscribe();
        let queues = Queues::new(subscribed.borrow_and_update().clone())?;
        let mut consumer = self.consume(&queues).await?;
        let mut components = self.components.clone();
        if let Some(heartbeat) = consumer.take_heartbeat() {
            components.push(Arc::new(LeaseHeartbeat { heartbeat, observer: self.config.observer.clone() }));
        }
        let scope = Scope {
            shutdown: CancellationToken::new(),
            stop: stop.clone(),
            name: self.executor.origin.clone(),
            stats: self.stats(),
            control: self.control(),
        };
        let mut running: Vec<_> = components.into_iter().map(|c| supervisor::supervise(c, scope.clone())).collect();
        let outcome = self.serve(Some(consumer), subscribed, pool, &stop, (&scope, &mut running)).await;
        scope.shutdown.cancel();
        for component in running {
            let _ = component.await;
        }
        outcome
    }

    /// A consumer of `queues`, whose holdings remote control then reads.
    async fn consume(&self, queues: &Queues) -> Result<Box<dyn Consumer>, BrokerError> {
        let consumer = self.broker.consume(queues, self.config.prefetch).await?;
        *artel_core::lock(&self.executor.holdings) = consumer.holdings();
        Ok(consumer)
    }

    /// After remote control changed the queues: the old consumer dropped (what it
    /// prefetched goes back; delivered messages keep their leases), a consumer of the new
    /// queues, or none when none are left. Retries while the broker is unavailable;
    /// `None` also when the worker is told to stop meanwhile.
    async fn resubscribe(
        &self,
        names: Vec<String>,
        shutdown: &CancellationToken,
    ) -> Result<Option<Box<dyn Consumer>>, BrokerError> {
        *artel_core::lock(&self.executor.holdings) = None;
        let Ok(queues) = Queues::new(names) else { return Ok(None) };
        let mut backoff = FETCH_BACKOFF.0;
        loop {
            match self.consume(&queues).await {
                Ok(consumer) => return Ok(Some(consumer)),
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "could not consume the new queues; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(None),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(FETCH_BACKOFF.1);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Fetches and runs until told to stop; a consumer opened for changed queues has its
    /// heartbeat supervised beside the components (`running`), so the leases of what it
    /// handed out outlive it, as the first consumer's do.
    async fn serve(
        &self,
        mut consumer: Option<Box<dyn Consumer>>,
        mut subscribed: tokio::sync::watch::Receiver<Vec<String>>,
        pool: &Pool,
        stop: &Stop,
        (scope, running): (&Scope, &mut Vec<tokio::task::JoinHandle<()>>),
    ) -> Result<(), BrokerError> {
        let shutdown = stop.warm.clone();
        let slots = &self.executor.slots;
        let mut backoff = FETCH_BACKOFF.0;
        loop {
            let permit = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                permit = slots.take() => permit,
            };
            let Some(permit) = permit else { break };
            let delivery = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Ok(()) = subscribed.changed() => {
                    let names = subscribed.borrow_and_update().clone();
                    tracing::info!(queues = %names.join(","), "consuming other queues");
                    drop(consumer.take());
                    consumer = self.resubscribe(names, &shutdown).await?;
                    if let Some(heartbeat) = consumer.as_mut().and_then(|c| c.take_heartbeat()) {
                        let observer = self.config.observer.clone();
                        let component = Arc::new(LeaseHeartbeat { heartbeat, observer });
                        running.push(supervisor::supervise(component, scope.clone()));
                    }
                    continue;
                }
                delivery = next(&mut consumer) => delivery,
            };
            match delivery {
                Ok(delivery) => {
                    backoff = FETCH_BACKOFF.0;
                    let executor = self.executor.clone();
                    // A refused job drops the delivery, which returns it to the queue.
                    if pool
                        .submit(async move {
                            executor.handle(delivery).await;
                            drop(permit)
                        })
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) if e.is_transient() => {
                    if let Some(observer) = &self.config.observer {
                        observer.broker_error(e.kind());
                    }
                    tracing::warn!(error = %e, retry_in = ?backoff, "broker unavailable; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(FETCH_BACKOFF.1);
                }
                Err(e) => return Err(e),
            }
        }
        // Prefetched messages go back now, for other workers; held ones keep their leases.
        drop(consumer);
        // Every slot back means every task in flight has finished (or been handed back).
        tokio::select! {
            _ = slots.all_free() => return Ok(()),
            _ = tokio::time::sleep(self.config.grace) => {
                tracing::warn!(grace = ?self.config.grace, "tasks still running after the grace period: stopping them; their messages go back to the queue");
            }
            _ = stop.cold.cancelled() => {
                tracing::warn!("cold stop: stopping running tasks; their messages go back to the queue");
            }
        }
        self.executor.stop_runs.cancel();
        if tokio::time::timeout(HAND_BACK, slots.all_free()).await.is_err() {
            tracing::warn!(
                "some stopped tasks could not hand their messages back in time; they return when their leases lapse"
            );
        }
        Ok(())
    }
}

/// The next delivery of `consumer`; with none (no queue left), never.
async fn next(consumer: &mut Option<Box<dyn Consumer>>) -> Result<artel_core::Delivery, BrokerError> {
    match consumer {
        Some(consumer) => consumer.next().await,
        None => std::future::pending().await,
    }
}
