//! [`App`]: where tasks are sent and results read; `App::local()` also runs them.

use std::sync::Arc;

use artel_core::canvas::{self, Lineage, Outcome};
use artel_core::{Backend, Clock, Registry, Signature, SystemClock, TaskError};
use artel_pool::Pool;
use artel_runtime::{Stop, Worker, WorkerConfig, WorkerStats};
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use crate::client::{AsyncResult, SendError};
use crate::group::GroupResult;
use crate::hub::ResultHub;

/// A connection to a broker and result backend, optionally with an in-process worker.
///
/// ```
/// use std::time::Duration;
/// use artel::{App, Registry, Signature, chain, chord, group};
/// use serde_json::json;
///
/// #[artel::task]
/// async fn add(x: i64, y: i64) -> i64 { x + y }
///
/// #[artel::task]
/// async fn total(values: Vec<i64>) -> i64 { values.iter().sum() }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // In-process with no server; `App::connect("sqlite://app.db")` (or redis://, ...) for
/// // a broker that `artel worker` processes serve.
/// let app = App::local(Registry::new().with(add).with(total))?;
/// let wait = Duration::from_secs(5);
///
/// let sum = add::s(2, 3).with(|s| s.priority(9).countdown(Duration::from_millis(10))).delay(&app).await?;
/// assert_eq!(sum.get(wait).await?, 5);
///
/// // add(1, 1), then add(2, 2) + 4: each step gets the one before's result first.
/// let steps = [add::s(1, 1).into_signature()?, Signature::new("add").with_args(vec![json!(4)])];
/// assert_eq!(app.send_task(chain(steps)).await?.get(wait).await?, json!(6));
///
/// let members = (0..3).map(|i| add::s(i, i).into_signature()).collect::<Result<Vec<_>, _>>()?;
/// assert_eq!(app.send_group(group(members)).await?.get(wait).await?, [json!(0), json!(2), json!(4)]);
///
/// let header = (1..=10).map(|i| add::s(i, 0).into_signature()).collect::<Result<Vec<_>, _>>()?;
/// assert_eq!(app.send_task(chord(header, Signature::new("total"))).await?.get(wait).await?, json!(55));
/// app.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct App {
    backend: Backend,
    clock: Arc<dyn Clock>,
    origin: String,
    local: Option<LocalWorker>,
    /// The PostgreSQL broker, when the app is on one: [`App::send_in`] publishes with it.
    #[cfg(feature = "postgres")]
    postgres: Option<artel_postgres::PostgresBroker>,
}

#[derive(Debug)]
struct LocalWorker {
    stop: Stop,
    task: JoinHandle<()>,
    stats: Arc<WorkerStats>,
}

/// This process as the producer of what it sends (Celery's `origin`: `gen{pid}@{host}`).
pub(crate) fn origin() -> String {
    format!("gen{}@{}", std::process::id(), artel_runtime::hostname())
}

impl App {
    /// A client of `backend`'s broker and stores (no worker of its own).
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            clock: Arc::new(SystemClock),
            origin: origin(),
            local: None,
            #[cfg(feature = "postgres")]
            postgres: None,
        }
    }

    /// A client of the broker and result backend `url` names (see [`crate::connect()`]):
    /// `App::connect("sqlite://artel.db").await?`.
    pub async fn connect(url: &str) -> Result<Self, crate::ConnectError> {
        let connection = crate::connect(url).await?;
        #[cfg(feature = "postgres")]
        let postgres = connection.postgres;
        #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
        let mut app = Self::new(connection.backend);
        #[cfg(feature = "postgres")]
        {
            app.postgres = postgres;
        }
        Ok(app)
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
        Self::with_worker(artel_core::memory::backend(), registry, config)
    }

    /// A client of `backend` that also runs `registry`'s tasks in this process (on the
    /// current tokio runtime); stop it with [`App::shutdown`].
    ///
    /// Installs `info`-level logs on standard error (see [`crate::logging`]) unless the
    /// program installed a `tracing` subscriber of its own first.
    pub fn with_worker(backend: Backend, registry: Registry, config: WorkerConfig) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            std::io::Error::other(
                "an in-process worker needs a tokio runtime: call it inside #[tokio::main] or Runtime::block_on",
            )
        })?;
        crate::logging::init_default();
        let worker = Worker::new(&backend, Arc::new(registry), config);
        let mut app = Self::new(backend);
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

    /// The broker and its stores, for reading results by id.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Counters of the in-process worker, if this app has one.
    pub fn worker_stats(&self) -> Option<Arc<WorkerStats>> {
        self.local.as_ref().map(|w| w.stats.clone())
    }

    /// Publishes `signature` — a task, or a chain or chord — and returns the id its
    /// result will be stored under (a chain's last step, a chord's body).
    ///
    /// A group has one result per member: send it with [`App::send_group`].
    pub async fn send(&self, signature: Signature) -> Result<String, SendError> {
        let task = signature.task.clone();
        match self.apply(signature).await? {
            Outcome::Task(id) => Ok(id),
            Outcome::Group { .. } => Err(SendError::NotOneResult { task }),
        }
    }

    /// Publishes `signature` and returns an untyped handle to its JSON result.
    pub async fn send_task(&self, signature: Signature) -> Result<AsyncResult, SendError> {
        let id = self.send(signature).await?;
        Ok(AsyncResult::new(id, &self.backend))
    }

    /// Publishes a group (or `chunks`) and returns a handle to its members' results.
    pub async fn send_group(&self, signature: Signature) -> Result<GroupResult, SendError> {
        let task = signature.task.clone();
        match self.apply(signature).await? {
            Outcome::Group { id, members } => {
                let task_ids = members.iter().flat_map(Outcome::task_ids).map(str::to_owned).collect();
                Ok(GroupResult::new(id, task_ids, &self.backend))
            }
            Outcome::Task(_) => Err(SendError::NotAGroup { task }),
        }
    }

    /// Publishes the messages that start `signature` (every queue in one batch) and says
    /// where its result will be.
    ///
    /// A unique call ([`Signature::unique_for`], [`Signature::unique_key`]) is published
    /// only when its key is free; otherwise the holding call's id is returned.
    pub async fn apply(&self, signature: Signature) -> Result<Outcome, SendError> {
        self.apply_on(self.backend.broker().as_ref(), signature).await
    }

    /// Publishes `signature` inside the caller's PostgreSQL transaction (`conn` is
    /// `&mut *tx`): workers see its messages when the transaction commits, and a rollback
    /// leaves nothing — the task about a row goes out with the row, or not at all. Says
    /// where its result will be, as [`App::apply`] does. Groups, chains and chords go in
    /// the same transaction; unique calls cannot (their key is not transactional).
    #[cfg(feature = "postgres")]
    pub async fn send_in(
        &self,
        conn: &mut artel_postgres::sqlx::PgConnection,
        signature: Signature,
    ) -> Result<Outcome, SendError> {
        let task = signature.task.clone();
        let Some(postgres) = &self.postgres else { return Err(SendError::NotTransactional { task }) };
        if signature.unique().is_some() {
            return Err(SendError::UniqueInTransaction { task });
        }
        self.apply_on(&artel_postgres::InTransaction::new(postgres, conn), signature).await
    }

    /// [`App::apply`] through `broker`.
    async fn apply_on(&self, broker: &dyn artel_core::Broker, signature: Signature) -> Result<Outcome, SendError> {
        let task = signature.task.clone();
        let unique = signature.unique();
        if unique.is_some() && signature.subtask_type.is_some() {
            return Err(SendError::UniqueWorkflow { task });
        }
        let plan = canvas::plan(signature, None, &Lineage::traced(), self.clock.now(), &self.origin)
            .map_err(|source| SendError::Canvas { task: task.clone(), source })?;
        let outcome = plan.outcome.clone();
        let claimed = match (unique, &outcome) {
            (Some((key, ttl)), Outcome::Task(id)) => {
                let Some(keys) = self.backend.unique() else { return Err(SendError::NoUniqueKeys { task }) };
                let holder = keys
                    .claim_unique(&key, id, ttl)
                    .await
                    .map_err(|source| SendError::Broker { task: task.clone(), source })?;
                if holder != *id {
                    tracing::debug!(%task, %key, %holder, "a call with this unique key is queued or running");
                    return Ok(Outcome::Task(holder));
                }
                Some((keys.clone(), key, id.clone()))
            }
            _ => None,
        };
        let (chords, ttl) = (self.backend.chords().as_ref(), Some(artel_core::RESULT_EXPIRES));
        if let Err(source) = canvas::publish(broker, chords, vec![plan], ttl).await {
            if let Some((keys, key, id)) = claimed {
                // Nothing was queued: the key must not turn the next send away.
                let _ = keys.release_unique(&key, &id).await;
            }
            return Err(SendError::Broker { task, source });
        }
        Ok(outcome)
    }

    /// Publishes each call of `calls` as it comes, with at most `window` of them waiting
    /// for their result, and yields each call's index in `calls` with its outcome as it
    /// finishes (Celery's `map`, streamed): memory stays flat however many calls there
    /// are, and thousands of results in flight share one [`ResultHub`] watch.
    ///
    /// A call that cannot be published yields its publishing error; a chain or chord
    /// yields its last result.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use artel::{App, Registry};
    ///
    /// #[artel::task]
    /// async fn square(x: u64) -> u64 { x * x }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let app = App::local(Registry::new().with(square))?;
    /// // A million items would stream the same way: at most 100 calls in flight.
    /// let calls = futures_util::stream::iter(1..=1000u64).map(|x| square::s(x).into_signature().expect("a number encodes"));
    /// let results: Vec<_> = app.map_stream(calls, 100).collect().await;
    /// assert_eq!(results.len(), 1000);
    /// let (index, value) = results.into_iter().find(|(index, _)| *index == 9).expect("item 10");
    /// assert_eq!((index, value.map_err(|e| e.to_string())?), (9, serde_json::json!(100)));
    /// app.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_stream<'a, S>(
        &'a self,
        calls: S,
        window: usize,
    ) -> impl Stream<Item = (usize, Result<Value, TaskError>)> + Send + 'a
    where
        S: Stream<Item = Signature> + Send + 'a,
    {
        let hub = Arc::new(OnceCell::new());
        calls
            .enumerate()
            .map(move |(index, call)| {
                let hub = hub.clone();
                async move { (index, self.call(&hub, call).await) }
            })
            .buffer_unordered(window.max(1))
    }

    /// Celery's `task.chunks` over a stream: each `size` argument lists of `items` are
    /// one `celery.starmap` call of `task`, at most `window` chunks in flight; yields each
    /// chunk's index and its list of results as it finishes.
    pub fn chunks_stream<'a, S>(
        &'a self,
        task: &Signature,
        items: S,
        size: usize,
        window: usize,
    ) -> impl Stream<Item = (usize, Result<Value, TaskError>)> + Send + 'a
    where
        S: Stream<Item = Vec<Value>> + Send + 'a,
    {
        let task = task.clone();
        self.map_stream(items.chunks(size.max(1)).map(move |slice| task.starmap(slice)), window)
    }

    /// Publishes `call` and waits on `hub` (started by the first call) for its result.
    async fn call(&self, hub: &OnceCell<ResultHub>, call: Signature) -> Result<Value, TaskError> {
        let hub = hub
            .get_or_try_init(|| ResultHub::start(&self.backend))
            .await
            .map_err(|e| TaskError::msg(format!("cannot watch results: {e}")))?;
        let id = self.send(call).await.map_err(|e| TaskError::msg(e.to_string()))?;
        let result = hub.wait(id).await.map_err(|e| TaskError::msg(format!("cannot read the result: {e}")))?;
        result.outcome()
    }

    /// Revokes task `id`; see [`AsyncResult::revoke`].
    pub async fn revoke(&self, id: &str, terminate: bool) -> Result<(), crate::ResultError> {
        AsyncResult::<serde_json::Value>::new(id.to_owned(), &self.backend).revoke(terminate).await
    }

    /// Stops the in-process worker after the tasks it is running finish.
    pub async fn shutdown(self) {
        if let Some(local) = self.local {
            local.stop.warm.cancel();
            let _ = local.task.await;
        }
    }
}
