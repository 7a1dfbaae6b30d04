//! [`App`]: where tasks are sent and results read; `App::local()` also runs them.

use std::sync::Arc;

use artel_core::memory::{MemoryBackend, MemoryBroker};
use artel_core::{Broker, Clock, DEFAULT_QUEUE, Registry, ResultBackend, Signature, SystemClock};
use artel_pool::Pool;
use artel_runtime::{Stop, Worker, WorkerConfig, WorkerStats};
use tokio::task::JoinHandle;

use crate::client::{AsyncResult, SendError};

/// A connection to a broker and result backend, optionally with an in-process worker.
#[derive(Debug)]
pub struct App {
    broker: Arc<dyn Broker>,
    backend: Arc<dyn ResultBackend>,
    clock: Arc<dyn Clock>,
    origin: String,
    local: Option<LocalWorker>,
}

#[derive(Debug)]
struct LocalWorker {
    stop: Stop,
    task: JoinHandle<()>,
    stats: Arc<WorkerStats>,
}

impl App {
    /// A client of `broker` and `backend` (no worker of its own).
    pub fn new(broker: Arc<dyn Broker>, backend: Arc<dyn ResultBackend>) -> Self {
        let origin = format!("gen{}@{}", std::process::id(), artel_runtime::hostname());
        Self { broker, backend, clock: Arc::new(SystemClock), origin, local: None }
    }

    /// Everything in this process: an in-memory broker and backend and a worker running
    /// `registry`'s tasks on the current tokio runtime. No server, no files.
    ///
    /// Must be called inside a tokio runtime; stop it with [`App::shutdown`].
    pub fn local(registry: Registry) -> std::io::Result<Self> {
        Self::local_with(registry, WorkerConfig::default())
    }

    /// [`App::local`] with worker settings (concurrency, queues, result TTL).
    pub fn local_with(registry: Registry, config: WorkerConfig) -> std::io::Result<Self> {
        Self::with_worker(Arc::new(MemoryBroker::new()), Arc::new(MemoryBackend::new()), registry, config)
    }

    /// A client of `broker` and `backend` that also runs `registry`'s tasks in this
    /// process (on the current tokio runtime); stop it with [`App::shutdown`].
    pub fn with_worker(
        broker: Arc<dyn Broker>,
        backend: Arc<dyn ResultBackend>,
        registry: Registry,
        config: WorkerConfig,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            std::io::Error::other(
                "an in-process worker needs a tokio runtime: call it inside #[tokio::main] or Runtime::block_on",
            )
        })?;
        let mut app = Self::new(broker.clone(), backend.clone());
        let worker = Worker::new(broker, backend, Arc::new(registry), config);
        let stats = worker.stats();
        let pool = Pool::builder().on_runtime(runtime.clone()).build()?;
        let stop = Stop::default();
        let token = stop.clone();
        let task = runtime.spawn(async move {
            if let Err(error) = worker.run(&pool, token).await {
                tracing::error!(%error, "local worker stopped");
            }
            pool.shutdown_async(Default::default()).await;
        });
        app.local = Some(LocalWorker { stop, task, stats });
        Ok(app)
    }

    /// The result backend, for reading results by id.
    pub fn backend(&self) -> Arc<dyn ResultBackend> {
        self.backend.clone()
    }

    /// The broker.
    pub fn broker(&self) -> Arc<dyn Broker> {
        self.broker.clone()
    }

    /// Counters of the in-process worker, if this app has one.
    pub fn worker_stats(&self) -> Option<Arc<WorkerStats>> {
        self.local.as_ref().map(|w| w.stats.clone())
    }

    /// Publishes `signature`; returns the task id.
    pub async fn send(&self, signature: Signature) -> Result<String, SendError> {
        let message = signature.to_message(self.clock.now(), &self.origin);
        let queue = signature.options.queue.as_deref().unwrap_or(DEFAULT_QUEUE);
        self.broker
            .publish(queue, std::slice::from_ref(&message))
            .await
            .map_err(|source| SendError::Broker { task: signature.task.clone(), source })?;
        Ok(message.headers.id)
    }

    /// Publishes `signature` and returns an untyped handle to its JSON result.
    pub async fn send_task(&self, signature: Signature) -> Result<AsyncResult, SendError> {
        let id = self.send(signature).await?;
        Ok(AsyncResult::new(id, self.backend()))
    }

    /// Revokes task `id`; see [`AsyncResult::revoke`].
    pub async fn revoke(&self, id: &str, terminate: bool) -> Result<(), crate::ResultError> {
        AsyncResult::<serde_json::Value>::new(id.to_owned(), self.backend()).revoke(terminate).await
    }

    /// Stops the in-process worker after the tasks it is running finish.
    pub async fn shutdown(self) {
        if let Some(local) = self.local {
            local.stop.warm.cancel();
            let _ = local.task.await;
        }
    }
}
