//! Where outcomes live, each its own capability: task results ([`ResultBackend`]), chord
//! counting ([`Chords`]) and the revocation log ([`Revocations`]). A broker crate opens
//! a [`Backend`]: its broker, these stores, and which operator capabilities it has.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use artel_cache::CacheStore;
use artel_lock::LockServer;

use crate::admin::{Control, Inspect, WorkerRegistry};
use crate::broker::{Broker, BrokerResult};
use crate::error::{BrokerError, BrokerErrorKind};
use crate::failed::FailedTasks;
use crate::history::TaskHistory;
use crate::rates::RateLimits;
use crate::result::TaskResult;
use crate::time::Timestamp;
use crate::unique::UniqueKeys;
use crate::watch::{PolledFeed, ResultFeed};
use crate::worker::remote::ControlBoard;

/// A broker with its stores and the operator capabilities it offers, as a broker crate
/// opens it: every capability a backend lacks is `None`, so callers ask instead of
/// guessing from the URL.
#[derive(Debug, Clone)]
pub struct Backend {
    broker: Arc<dyn Broker>,
    results: Arc<dyn ResultBackend>,
    chords: Arc<dyn Chords>,
    revocations: Arc<dyn Revocations>,
    inspect: Option<Arc<dyn Inspect>>,
    control: Option<Arc<dyn Control>>,
    workers: Option<Arc<dyn WorkerRegistry>>,
    board: Option<Arc<dyn ControlBoard>>,
    failed: Option<Arc<dyn FailedTasks>>,
    history: Option<Arc<dyn TaskHistory>>,
    locks: Option<Arc<dyn LockServer>>,
    unique: Option<Arc<dyn UniqueKeys>>,
    rates: Option<Arc<dyn RateLimits>>,
    cache: Option<Arc<dyn CacheStore>>,
}

impl Backend {
    /// `broker` with results, chords and revocations kept in `store` (which may be the
    /// broker itself), and no operator capability yet.
    pub fn new<S>(broker: Arc<dyn Broker>, store: S) -> Self
    where
        S: ResultBackend + Chords + Revocations + Clone + 'static,
    {
        Self {
            broker,
            results: Arc::new(store.clone()),
            chords: Arc::new(store.clone()),
            revocations: Arc::new(store),
            inspect: None,
            control: None,
            workers: None,
            board: None,
            failed: None,
            history: None,
            locks: None,
            unique: None,
            rates: None,
            cache: None,
        }
    }

    /// This backend with `admin` reading and tidying queues and keeping worker reports.
    pub fn administered<A>(mut self, admin: A) -> Self
    where
        A: Inspect + Control + WorkerRegistry + Clone + 'static,
    {
        self.inspect = Some(Arc::new(admin.clone()));
        self.control = Some(Arc::new(admin.clone()));
        self.workers = Some(Arc::new(admin));
        self
    }

    /// This backend queueing on `broker` instead (a wrapper around its own).
    pub fn with_broker(mut self, broker: Arc<dyn Broker>) -> Self {
        self.broker = broker;
        self
    }

    /// This backend storing results in `results` instead (a wrapper around its own).
    pub fn with_results(mut self, results: Arc<dyn ResultBackend>) -> Self {
        self.results = results;
        self
    }

    /// This backend keeping tasks that failed for good in `failed`.
    pub fn with_failed(mut self, failed: Arc<dyn FailedTasks>) -> Self {
        self.failed = Some(failed);
        self
    }

    /// This backend listing workers from `workers` instead (a monitor of Celery's
    /// events, say).
    pub fn with_workers(mut self, workers: Arc<dyn WorkerRegistry>) -> Self {
        self.workers = Some(workers);
        self
    }

    /// This backend carrying remote control (`artel inspect`, `artel control`) on `board`.
    pub fn with_control_board(mut self, board: Arc<dyn ControlBoard>) -> Self {
        self.board = Some(board);
        self
    }

    /// This backend keeping an index of recent tasks in `history`.
    pub fn with_history(mut self, history: Arc<dyn TaskHistory>) -> Self {
        self.history = Some(history);
        self
    }

    /// This backend offering locks (mutex tasks, beat's leader) from `locks`.
    pub fn with_locks(mut self, locks: Arc<dyn LockServer>) -> Self {
        self.locks = Some(locks);
        self
    }

    /// This backend claiming unique task keys in `unique`.
    pub fn with_unique(mut self, unique: Arc<dyn UniqueKeys>) -> Self {
        self.unique = Some(unique);
        self
    }

    /// This backend keeping rate limits shared by every worker (`rate_limit_global`) in
    /// `rates`.
    pub fn with_rate_limits(mut self, rates: Arc<dyn RateLimits>) -> Self {
        self.rates = Some(rates);
        self
    }

    /// This backend offering `cache`, a cache every process reaches (memoized tasks).
    pub fn with_cache(mut self, cache: Arc<dyn CacheStore>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Where tasks are queued.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// Where results are stored and waited for.
    pub fn results(&self) -> &Arc<dyn ResultBackend> {
        &self.results
    }

    /// A watch for many tasks' results at once, as they finish.
    pub async fn watch(&self) -> BrokerResult<crate::ResultWatch> {
        crate::ResultWatch::new(self.results.clone()).await
    }

    /// Where chords are counted.
    pub fn chords(&self) -> &Arc<dyn Chords> {
        &self.chords
    }

    /// Where revocations are recorded.
    pub fn revocations(&self) -> &Arc<dyn Revocations> {
        &self.revocations
    }

    /// Reading queues and dead letters, where offered.
    pub fn inspect(&self) -> Option<&Arc<dyn Inspect>> {
        self.inspect.as_ref()
    }

    /// Tidying dead letters, where offered.
    pub fn control(&self) -> Option<&Arc<dyn Control>> {
        self.control.as_ref()
    }

    /// Where workers report, where offered.
    pub fn workers(&self) -> Option<&Arc<dyn WorkerRegistry>> {
        self.workers.as_ref()
    }

    /// Where remote-control requests and replies meet, on brokers without Celery's
    /// pidbox, where offered.
    pub fn control_board(&self) -> Option<&Arc<dyn ControlBoard>> {
        self.board.as_ref()
    }

    /// Tasks that failed for good, to list and run again, where kept.
    pub fn failed(&self) -> Option<&Arc<dyn FailedTasks>> {
        self.failed.as_ref()
    }

    /// The index of recent tasks, where kept.
    pub fn history(&self) -> Option<&Arc<dyn TaskHistory>> {
        self.history.as_ref()
    }

    /// Locks and fenced values shared by every process on this backend, where offered.
    pub fn locks(&self) -> Option<&Arc<dyn LockServer>> {
        self.locks.as_ref()
    }

    /// Where unique task keys are claimed, where offered.
    pub fn unique(&self) -> Option<&Arc<dyn UniqueKeys>> {
        self.unique.as_ref()
    }

    /// Where rate limits shared by every worker are kept, where offered.
    pub fn rate_limits(&self) -> Option<&Arc<dyn RateLimits>> {
        self.rates.as_ref()
    }

    /// A cache shared by every process on this backend, where offered.
    pub fn cache(&self) -> Option<&Arc<dyn CacheStore>> {
        self.cache.as_ref()
    }
}

/// Where task results are stored and waited for.
#[async_trait]
pub trait ResultBackend: Send + Sync + fmt::Debug {
    /// The identity of the connection this backend shares with a broker, if it is one
    /// (see [`Broker::store_identity`]).
    fn store_identity(&self) -> Option<usize> {
        None
    }

    /// Stores `result` unless the stored state may not move to it (see
    /// [`crate::State::can_transition_to`]); returns whether it was written.
    async fn store(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<bool>;

    /// The stored result, if any (none reads as PENDING).
    async fn get(&self, task_id: &str) -> BrokerResult<Option<TaskResult>>;

    /// Waits until the task is ready or `timeout` passes (then a `Timeout` error).
    ///
    /// # Cancel safety
    /// Cancel safe.
    async fn wait(&self, task_id: &str, timeout: Duration) -> BrokerResult<TaskResult>;

    /// The stored results of `task_ids`, in their order (`None` where nothing is stored);
    /// backends read them in one round trip.
    async fn get_many(&self, task_ids: &[String]) -> BrokerResult<Vec<Option<TaskResult>>> {
        let mut results = Vec::with_capacity(task_ids.len());
        for id in task_ids {
            results.push(self.get(id).await?);
        }
        Ok(results)
    }

    /// How this backend announces stored results to a [`ResultWatch`](crate::ResultWatch): by default it
    /// does not, and the watch reads its tasks every 100 ms.
    async fn feed(&self) -> BrokerResult<Box<dyn ResultFeed>> {
        Ok(Box::new(PolledFeed::new(None, Duration::from_millis(100))))
    }

    /// Saves which tasks make up group `group_id` (Celery's `GroupResult.save()`), so the
    /// group can be read back by its id alone. Stored as a result under `group:<id>`
    /// unless the backend has a format of its own (Celery's `celery-taskset-meta-<id>`).
    async fn save_group(&self, group_id: &str, task_ids: &[String], ttl: Option<Duration>) -> BrokerResult<()> {
        let key = format!("group:{group_id}");
        let saved = TaskResult::success(&key, serde_json::json!(task_ids), chrono::Utc::now().fixed_offset());
        self.store(&saved, ttl).await.map(drop)
    }

    /// The task ids of a saved group, if it was saved (and has not expired).
    async fn restore_group(&self, group_id: &str) -> BrokerResult<Option<Vec<String>>> {
        let Some(saved) = self.get(&format!("group:{group_id}")).await? else { return Ok(None) };
        serde_json::from_value(saved.result).map(Some).map_err(|e| {
            BrokerError::new(BrokerErrorKind::Corrupt, format!("saved group {group_id} is not a list of ids"))
                .with_source(e)
        })
    }
}

/// Counting a chord's members as they finish, so exactly one worker runs its body.
#[async_trait]
pub trait Chords: Send + Sync + fmt::Debug {
    /// Records, before a chord's members are published, how many there are; for backends
    /// that keep the size themselves (Celery's `G.s` key). Others read it from the body.
    async fn prepare_chord(&self, _group_id: &str, _size: u32, _ttl: Option<Duration>) -> BrokerResult<()> {
        Ok(())
    }

    /// Records the outcome of member `index` of chord `group_id` (of `size` members, or as
    /// many as `prepare_chord` said when the body does not carry its size) and, when every
    /// member is in, returns their results in member order.
    ///
    /// Recording a member twice (a redelivered message) overwrites it, so the set counts
    /// each member once; whoever records while the set is complete gets the results, so a
    /// worker that died before calling the chord's body leaves it to the redelivery.
    async fn chord_part(
        &self,
        group_id: &str,
        index: u32,
        size: Option<u32>,
        result: &TaskResult,
        ttl: Option<Duration>,
    ) -> BrokerResult<Option<Vec<TaskResult>>>;
}

/// The shared record of revoked tasks every worker reads.
#[async_trait]
pub trait Revocations: Send + Sync + fmt::Debug {
    /// Records that a task must not run (and, with `terminate`, must stop if running).
    async fn revoke(&self, revocation: &Revocation) -> BrokerResult<()>;

    /// Revocations recorded after `cursor` (0: all), with the cursor to ask from next;
    /// workers poll this to keep their revoked set current.
    async fn revocations(&self, cursor: u64) -> BrokerResult<(Vec<Revocation>, u64)>;
}

/// The error of a backend asked to count a chord whose size it was never told.
pub fn unknown_chord_size(group_id: &str) -> BrokerError {
    BrokerError::new(
        BrokerErrorKind::Unsupported,
        format!(
            "chord {group_id}: the body does not say how many members it has (send it with artel, or use a Celery result backend)"
        ),
    )
}

/// A request that a task not run, kept until `expires_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revocation {
    /// The task to stop.
    pub task_id: String,
    /// Also stop it if it is running (Celery's `terminate=True`).
    pub terminate: bool,
    /// When workers may forget it (by then the message has expired or been discarded).
    pub expires_at: Timestamp,
}

impl Revocation {
    /// A revocation as databases keep it, its expiry in unix milliseconds; `None` when
    /// that is out of range.
    pub fn from_row(task_id: String, terminate: bool, expires_at_ms: i64) -> Option<Self> {
        let expires_at = chrono::DateTime::from_timestamp_millis(expires_at_ms)?.fixed_offset();
        Some(Self { task_id, terminate, expires_at })
    }
}
