//! The broker conformance suite.
//!
//! `conformance!(setup)` expands into one `#[tokio::test]` per behaviour below, run
//! against whatever `setup()` opens. Every broker crate invokes it; a change to any
//! broker's behaviour extends this suite, not only that broker's tests.
//!
//! `setup` returns a [`Fixture`]: the [`Backend`] a broker crate opens (its broker,
//! stores and operator capabilities), a unique prefix so tests never share queues, even
//! against a shared server, and the broker's [`Capabilities`]. Every behaviour runs on every broker; one that depends on a
//! capability the broker lacks says so and passes (`skipped: ...`) — there are no lists
//! of behaviours to opt out of.

pub mod caches;
pub mod cluster;
pub mod coordination;
pub mod fairness;
pub mod faults;
pub mod history;
pub mod hostile;
pub mod locks;
pub mod remote;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use artel_core::Queues;
use artel_core::{
    Backend, BoxFuture, Broker, BrokerErrorKind, Clock, FailedFilter, FailedTask, Inspect, Message, ResultBackend,
    ResultWatch, Revocation, Signature, State, SystemClock, TaskResult,
};
use serde_json::json;

pub use coordination::{
    locks_exclude_and_fenced_values_refuse_stale_writers, rate_limits_admit_one_run_per_interval_and_book_slots,
    the_shared_cache_keeps_values_and_clears_by_prefix, unique_keys_name_the_first_task_until_released_or_lapsed,
};
pub use fairness::groups_of_a_queue_are_served_round_robin;
pub use history::the_task_history_keeps_each_tasks_latest_record_newest_first;
pub use remote::remote_control_requests_reach_readers_after_their_cursor_and_replies_are_kept_by_ticket;

/// What a broker crate hands the suite.
pub struct Fixture {
    /// The broker under test, with its stores and operator capabilities.
    pub backend: Backend,
    /// Unique per test; prefix queue names with it.
    pub prefix: String,
    /// How many failures per queue the broker's record of failed tasks, and how many
    /// records its task history (where it keeps them) were configured to keep: use a small
    /// number, the suite fills them.
    pub kept: u32,
    /// Another connection to the same store with short leases, for the lease behaviours;
    /// `None` where messages are not leased (RabbitMQ holds them for the channel).
    pub leases: Option<Leases>,
    /// Opens the same store again with every polling interval an hour long, so a
    /// behaviour can tell a waiter that is woken from one that polls.
    pub slow_polling: SlowPolling,
    /// What the broker does where brokers differ.
    pub capabilities: Capabilities,
    /// Dropped at the end of the test (removes files, keys...).
    pub cleanup: Box<dyn Send>,
}

/// Opens connections to a fixture's store as other worker processes would, with leases
/// of `lease`.
pub struct Leases {
    /// How long a claimed message stays held without a heartbeat (keep it short).
    pub lease: Duration,
    /// Opens another connection; callable from any tokio runtime.
    pub open: Box<dyn Fn() -> BoxFuture<'static, Arc<dyn Broker>> + Send + Sync>,
}

/// Opens the backend again with consumers and result waiters that would poll only once
/// an hour.
pub struct SlowPolling {
    /// Opens them; callable from any tokio runtime.
    pub open: Box<dyn Fn() -> BoxFuture<'static, Backend> + Send + Sync>,
}

/// What [`SlowPolling`] sets every polling interval to.
pub const SLOW_POLL: Duration = Duration::from_secs(3600);

impl std::fmt::Debug for SlowPolling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowPolling").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases").field("lease", &self.lease).finish()
    }
}

/// Where brokers legitimately differ (as Celery's transports do); artel's native brokers
/// have every capability ([`Capabilities::NATIVE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// The order priorities are served in.
    pub priority: PriorityOrder,
    /// One consumer of several queues serves the first named first (RabbitMQ pushes from
    /// each queue to its own consumer and interleaves them).
    pub queues_in_order: bool,
    /// The broker keeps a delayed message out of the queue until due (Celery's transports
    /// deliver it at once and the consumer holds it, so `len` counts it).
    pub broker_holds_delayed: bool,
    /// A requeued message reaches another consumer (RabbitMQ may push it straight back to
    /// the one that requeued it).
    pub requeue_reaches_others: bool,
    /// How chords count their members.
    pub chords: ChordCounting,
    /// A holder whose lease lapsed cannot settle the message another consumer took since
    /// (kombu settles by delivery tag, whoever holds the message now).
    pub stale_acks_refused: bool,
    /// An idle consumer is woken by a publish (kombu's Redis layout signals nothing: its
    /// consumers poll).
    pub consumers_woken: bool,
    /// A queue serves the groups of its messages (`group_key`) round-robin.
    pub fair_groups: bool,
}

/// The order a broker serves priorities in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorityOrder {
    /// 9 before 0 (artel's brokers; RabbitMQ with `x-max-priority`).
    HigherFirst,
    /// 0 before 9 (kombu's Redis layout).
    LowerFirst,
    /// Priorities are not honoured (RabbitMQ without `x-max-priority`).
    Ignored,
}

/// How a broker's result backend completes a chord.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChordCounting {
    /// Counts each member once, and a redelivered member sees the complete set again.
    CountEachOnce,
    /// Celery 5.7's claim: the body is claimed once; a later redelivery of a member does
    /// not see the set again (tested in the Celery crate).
    ClaimOnce,
}

impl Capabilities {
    /// artel's own brokers (`sqlite://`, `redis://`, `memory://`).
    pub const NATIVE: Capabilities = Capabilities {
        priority: PriorityOrder::HigherFirst,
        queues_in_order: true,
        broker_holds_delayed: true,
        requeue_reaches_others: true,
        chords: ChordCounting::CountEachOnce,
        stale_acks_refused: true,
        consumers_woken: true,
        fair_groups: true,
    };
}

/// Claims one message of `queue` on a runtime of its own that is then torn down without
/// settling anything, as when a worker process is killed: no ack, no release, no more
/// heartbeats. Returns its task id.
#[allow(clippy::mem_forget)] // forgetting the delivery and consumer is the crash
fn claim_and_crash(leases: &Leases, queue: &str) -> String {
    tokio::task::block_in_place(|| {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let id = runtime.block_on(async {
            let broker = (leases.open)().await;
            let mut consumer = broker.consume(&Queues::one(queue), 1).await.expect("consume");
            let delivery = next_task(&mut consumer).await;
            let id = delivery.message().headers.id.clone();
            std::mem::forget(delivery);
            std::mem::forget(consumer);
            id
        });
        runtime.shutdown_background();
        id
    })
}

/// Says why a behaviour does not apply to this broker.
fn skip(f: &Fixture, why: &str) {
    eprintln!("skipped on {:?}: {why}", f.broker());
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture").field("broker", self.broker()).field("prefix", &self.prefix).finish()
    }
}

impl Fixture {
    /// The broker under test.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        self.backend.broker()
    }

    /// Its result store.
    pub fn results(&self) -> &Arc<dyn ResultBackend> {
        self.backend.results()
    }

    /// A queue name unique to this test.
    pub fn queue(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// A database path in the temp directory, unique per call; the file and its SQLite
/// companions (`-wal`, `-shm`) are removed on drop.
#[derive(Debug)]
pub struct ScratchDb(PathBuf);

impl ScratchDb {
    /// A fresh path whose name says what it is for.
    pub fn new(purpose: &str) -> Self {
        let unique = format!("{}-{}", std::process::id(), SystemClock.now().timestamp_nanos_opt().unwrap_or_default());
        let n = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(std::env::temp_dir().join(format!("artel-{purpose}-{unique}-{n}.db")))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

static SCRATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Drop for ScratchDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
        let _ = std::fs::remove_dir_all(format!("{}.wake", self.0.display()));
    }
}

/// Asserts that a broker's result guard (one line of SQL or Lua that lists the final
/// states a write must not replace) names exactly the ready states, quoted.
pub fn assert_guard_names_exactly_the_ready_states(guard: &str) {
    for state in State::ALL {
        let quoted = format!("'{}'", state.as_str());
        assert_eq!(guard.contains(&quoted), state.is_ready(), "{state:?} in {guard}");
    }
}

/// Expands into the whole suite for the broker `setup()` opens.
#[macro_export]
macro_rules! conformance {
    ($setup:expr) => {
        $crate::conformance!(@tests $setup;
            publish_consume_ack_empties_the_queue,
            priorities_are_served_in_order,
            earlier_queues_are_served_first,
            an_undecided_delivery_is_delivered_again,
            a_requeued_message_is_delivered_again,
            a_handed_back_delivery_does_not_count,
            a_stopped_consumer_keeps_a_running_delivery_held_until_it_settles,
            failures_are_recorded_with_the_ack_newest_kept_and_run_again,
            a_rejected_message_is_not_delivered_again,
            delayed_messages_wait_for_their_eta,
            purge_removes_waiting_messages_and_counts_them,
            a_batch_is_delivered_whole_and_in_order,
            results_round_trip_and_wake_waiters,
            waiters_are_woken_by_a_store_and_a_publish_not_by_polling,
            waiting_for_a_missing_result_times_out,
            results_are_read_many_at_once_and_watched_until_each_is_ready,
            a_final_result_is_never_overwritten,
            results_expire_after_their_ttl,
            ack_with_result_stores_and_acks_or_hands_the_delivery_back,
            completions_arriving_together_each_get_their_own_outcome,
            a_task_id_published_again_is_a_separate_message,
            a_chord_completes_when_every_member_is_in_counting_each_once,
            revocations_are_read_in_order_after_a_cursor,
            a_stopped_consumer_leaves_a_delayed_message_for_the_next,
            queues_are_counted_and_dead_letters_listed_retried_and_purged,
            workers_report_and_leave,
            remote_control_requests_reach_readers_after_their_cursor_and_replies_are_kept_by_ticket,
            unfinished_messages_count_waiting_and_held_ones,
            a_consumer_claims_ahead_of_its_buffer_but_never_beyond_prefetch,
            a_crashed_holders_message_is_delivered_again_after_the_lease,
            a_live_holders_heartbeat_keeps_its_lease,
            a_stale_holders_ack_does_not_settle_the_rescued_message,
            locks_exclude_and_fenced_values_refuse_stale_writers,
            unique_keys_name_the_first_task_until_released_or_lapsed,
            rate_limits_admit_one_run_per_interval_and_book_slots,
            the_shared_cache_keeps_values_and_clears_by_prefix,
            groups_of_a_queue_are_served_round_robin,
            the_task_history_keeps_each_tasks_latest_record_newest_first,
        );
    };
    (@tests $setup:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = $setup;
                $crate::$name(&fixture).await;
            }
        )*
    };
}

fn message(task: &str) -> Message {
    Signature::new(task).to_message(SystemClock.now(), "conformance@test")
}

const PATIENCE: Duration = Duration::from_secs(10);

async fn next_task(consumer: &mut Box<dyn artel_core::Consumer>) -> artel_core::Delivery {
    tokio::time::timeout(PATIENCE, consumer.next()).await.expect("a delivery within 10 s").expect("consume")
}

/// Publish, consume, ack: the queue is empty afterwards.
pub async fn publish_consume_ack_empties_the_queue(f: &Fixture) {
    let q = f.queue("basic");
    f.broker().publish(&q, &[message("a")]).await.expect("publish");
    assert_eq!(f.broker().len(&q).await.expect("len"), 1);
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 4).await.expect("consume");
    let delivery = next_task(&mut consumer).await;
    assert_eq!(delivery.message().headers.task, "a");
    delivery.ack().await.expect("ack");
    assert_eq!(f.broker().len(&q).await.expect("len"), 0);
    assert!(tokio::time::timeout(Duration::from_millis(200), consumer.next()).await.is_err(), "nothing left");
}

/// Priorities are served in the broker's order (9 first on artel's brokers, 0 first on
/// kombu's Redis layout); equal priorities in publish order.
pub async fn priorities_are_served_in_order(f: &Fixture) {
    let expected = match f.capabilities.priority {
        PriorityOrder::HigherFirst => ["b", "d", "c", "a"],
        PriorityOrder::LowerFirst => ["a", "c", "b", "d"],
        PriorityOrder::Ignored => return skip(f, "it does not honour priorities"),
    };
    let q = f.queue("prio");
    let batch: Vec<Message> = [("a", 0), ("b", 9), ("c", 5), ("d", 9)]
        .iter()
        .map(|(name, p)| Signature::new(*name).priority(*p).to_message(SystemClock.now(), "t"))
        .collect();
    f.broker().publish(&q, &batch).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::one(q), 1).await.expect("consume");
    let mut order = Vec::new();
    for _ in 0..4 {
        let d = next_task(&mut consumer).await;
        order.push(d.message().headers.task.clone());
        d.ack().await.expect("ack");
    }
    assert_eq!(order, expected);
}

/// With several queues ready, the first named is served first.
pub async fn earlier_queues_are_served_first(f: &Fixture) {
    if !f.capabilities.queues_in_order {
        return skip(f, "it interleaves the queues of one consumer");
    }
    let (high, low) = (f.queue("high"), f.queue("low"));
    f.broker().publish(&low, &[message("from-low")]).await.expect("publish");
    f.broker().publish(&high, &[message("from-high")]).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::new([high, low]).expect("two queues"), 1).await.expect("consume");
    let first = next_task(&mut consumer).await;
    assert_eq!(first.message().headers.task, "from-high");
    first.ack().await.expect("ack");
    let second = next_task(&mut consumer).await;
    assert_eq!(second.message().headers.task, "from-low");
    // Settled here: a delivery released on drop could land after the fixture's cleanup.
    second.ack().await.expect("ack");
}

/// A delivery dropped without ack/requeue/reject goes back (nothing unacked is lost).
pub async fn an_undecided_delivery_is_delivered_again(f: &Fixture) {
    let q = f.queue("undecided");
    f.broker().publish(&q, &[message("t")]).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 1).await.expect("consume");
    let first = next_task(&mut consumer).await;
    let id = first.message().headers.id.clone();
    drop(first);
    let again = next_task(&mut consumer).await;
    assert_eq!(again.message().headers.id, id);
    again.ack().await.expect("ack");
}

/// `requeue` puts the message back for anyone.
pub async fn a_requeued_message_is_delivered_again(f: &Fixture) {
    if !f.capabilities.requeue_reaches_others {
        return skip(f, "a requeued message may go straight back to the consumer that requeued it");
    }
    let q = f.queue("requeue");
    f.broker().publish(&q, &[message("t")]).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 1).await.expect("consume");
    next_task(&mut consumer).await.requeue().await.expect("requeue");
    let mut other = f.broker().consume(&Queues::one(q), 1).await.expect("consume");
    next_task(&mut other).await.ack().await.expect("ack");
}

/// Brokers that count deliveries (for quarantining poison messages) count only those lost
/// with their holder: a requeued or released delivery does not add up. Skipped where the
/// broker does not count (`deliveries() == 0`).
pub async fn a_handed_back_delivery_does_not_count(f: &Fixture) {
    let q = f.queue("counted");
    f.broker().publish(&q, &[message("t")]).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 1).await.expect("consume");
    let first = next_task(&mut consumer).await;
    if first.deliveries() == 0 {
        eprintln!("skipped: {:?} does not count deliveries", f.broker());
        return first.ack().await.expect("ack");
    }
    assert_eq!(first.deliveries(), 1, "a first delivery");
    first.requeue().await.expect("requeue");
    let second = next_task(&mut consumer).await;
    assert_eq!(second.deliveries(), 1, "a requeue does not count");
    drop(second);
    let third = next_task(&mut consumer).await;
    assert_eq!(third.deliveries(), 1, "a release does not count");
    third.ack().await.expect("ack");
}

/// A consumer that stops (its worker is stopping) hands back what it prefetched at once,
/// but a delivery still running stays held until it is settled: a run the worker could
/// not stop must not start again elsewhere while it goes on.
pub async fn a_stopped_consumer_keeps_a_running_delivery_held_until_it_settles(f: &Fixture) {
    let q = f.queue("running");
    f.broker().publish(&q, &[message("running"), message("prefetched")]).await.expect("publish");
    let mut stopping = f.broker().consume(&Queues::one(q.clone()), 2).await.expect("consume");
    let running = next_task(&mut stopping).await;
    assert_eq!(running.message().headers.task, "running");
    drop(stopping);
    let mut next = f.broker().consume(&Queues::one(q.clone()), 2).await.expect("consume");
    let prefetched = next_task(&mut next).await;
    assert_eq!(prefetched.message().headers.task, "prefetched", "handed back at once");
    prefetched.ack().await.expect("ack");
    let early = tokio::time::timeout(Duration::from_millis(500), next.next()).await;
    assert!(early.is_err(), "the running delivery is still held: {early:?}");
    running.requeue().await.expect("requeue once it stopped");
    let again = next_task(&mut next).await;
    assert_eq!(again.message().headers.task, "running");
    again.ack().await.expect("ack");
}

/// A task that failed for good is acknowledged and recorded in one step
/// (`ack_failed`); the newest failures of a queue are kept, newest first; `failed_retry`
/// publishes one again with its retry count reset and forgets its stored result.
/// Skipped where the broker keeps no failures.
pub async fn failures_are_recorded_with_the_ack_newest_kept_and_run_again(f: &Fixture) {
    let (Some(failed), kept) = (f.backend.failed(), &f.kept) else {
        return eprintln!("skipped: {:?} keeps no failed tasks", f.broker());
    };
    let q = f.queue("failed");
    let retried = |_| {
        let mut m = message("boom");
        m.headers.retries = 2;
        m
    };
    let batch: Vec<Message> = (0..=*kept).map(retried).collect();
    f.broker().publish(&q, &batch).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 1).await.expect("consume");
    for n in 0..=*kept {
        let delivery = next_task(&mut consumer).await;
        let headers = &delivery.message().headers;
        let failure = FailedTask {
            task_id: headers.id.clone(),
            task: headers.task.clone(),
            queue: q.clone(),
            args: "[]".to_owned(),
            error: format!("RuntimeError: boom {n}"),
            worker: "conformance@test".to_owned(),
            failed_at_ms: 1_000 + i64::from(n),
            attempts: headers.retries + 1,
        };
        let stored = TaskResult::failure(&headers.id, &artel_core::TaskError::msg("boom"), SystemClock.now());
        f.results().store(&stored, None).await.expect("store");
        delivery.ack_failed(&failure).await.expect("ack and record");
    }
    assert_eq!(f.broker().len(&q).await.expect("len"), 0, "acknowledged");
    let filter = FailedFilter { queue: Some(q.clone()), limit: 100, ..FailedFilter::default() };
    let listed = failed.failed_list(&filter).await.expect("list");
    let errors: Vec<&str> = listed.iter().map(|f| f.error.as_str()).collect();
    let newest: Vec<String> = (1..=*kept).rev().map(|n| format!("RuntimeError: boom {n}")).collect();
    assert_eq!(errors, newest, "the newest {kept}, newest first");
    assert_eq!(listed[0].attempts, 3);

    let again = listed[0].task_id.clone();
    assert_eq!(failed.failed_retry(Some(std::slice::from_ref(&again))).await.expect("retry"), 1);
    assert!(f.results().get(&again).await.expect("get").is_none(), "its FAILURE is forgotten: PENDING");
    let rerun = next_task(&mut consumer).await;
    assert_eq!((rerun.message().headers.id.as_str(), rerun.message().headers.retries), (again.as_str(), 0));
    rerun.ack().await.expect("ack");
    let left = failed.failed_list(&filter).await.expect("list").len();
    assert_eq!(left, usize::try_from(kept - 1).expect("small"), "a retried failure leaves the record");
}

/// `reject` dead-letters: the message is not delivered again.
pub async fn a_rejected_message_is_not_delivered_again(f: &Fixture) {
    let q = f.queue("reject");
    f.broker().publish(&q, &[message("bad")]).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 1).await.expect("consume");
    next_task(&mut consumer).await.reject("unknown task `bad`").await.expect("reject");
    assert_eq!(f.broker().len(&q).await.expect("len"), 0);
    assert!(tokio::time::timeout(Duration::from_millis(300), consumer.next()).await.is_err());
}

/// A countdown message is not delivered before its ETA and is delivered after it.
pub async fn delayed_messages_wait_for_their_eta(f: &Fixture) {
    if !f.capabilities.broker_holds_delayed {
        return skip(f, "delayed messages are delivered at once and held by their consumer");
    }
    let q = f.queue("delayed");
    let delayed = Signature::new("later").countdown(Duration::from_millis(400)).to_message(SystemClock.now(), "t");
    let sent = Instant::now();
    f.broker().publish(&q, &[delayed]).await.expect("publish");
    assert_eq!(f.broker().len(&q).await.expect("len"), 0, "not ready yet");
    let mut consumer = f.broker().consume(&Queues::one(q), 1).await.expect("consume");
    let d = next_task(&mut consumer).await;
    assert!(sent.elapsed() >= Duration::from_millis(390), "delivered after {:?}", sent.elapsed());
    assert_eq!(d.message().headers.task, "later");
    d.ack().await.expect("ack");
}

/// Purge deletes waiting messages and returns the count.
pub async fn purge_removes_waiting_messages_and_counts_them(f: &Fixture) {
    let q = f.queue("purge");
    f.broker().publish(&q, &[message("a"), message("b"), message("c")]).await.expect("publish");
    assert_eq!(f.broker().purge(&q).await.expect("purge"), 3);
    assert_eq!(f.broker().len(&q).await.expect("len"), 0);
}

/// A published batch is delivered whole, in publish order (equal priority).
pub async fn a_batch_is_delivered_whole_and_in_order(f: &Fixture) {
    let q = f.queue("batch");
    // More than a script passes to one command (1,000 arguments), both ways.
    let batch: Vec<Message> = (0..1_200).map(|i| message(&format!("t{i}"))).collect();
    f.broker().publish(&q, &batch).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 1_100).await.expect("consume");
    for i in 0..1_200 {
        let d = next_task(&mut consumer).await;
        assert_eq!(d.message().headers.task, format!("t{i}"));
        d.ack().await.expect("ack");
    }
    assert_eq!(f.broker().len(&q).await.expect("len"), 0);
}

/// A stored result is read back as stored, and a waiter is woken by the store.
pub async fn results_round_trip_and_wake_waiters(f: &Fixture) {
    let id = format!("{}result", f.prefix);
    let waiter = {
        let (backend, id) = (f.results().clone(), id.clone());
        tokio::spawn(async move { backend.wait(&id, PATIENCE).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    f.results().store(&TaskResult::progress(&id, State::Started, json!({"pid": 1})), None).await.expect("store");
    let done = TaskResult::success(&id, json!({"sum": 5}), SystemClock.now());
    f.results().store(&done, None).await.expect("store");
    let got = waiter.await.expect("join").expect("ready");
    assert_eq!(got, done);
    assert_eq!(f.results().get(&id).await.expect("get"), Some(done));
}

/// A result waiter is woken by the store and an idle consumer by a publish, on a
/// connection whose polling would take an hour: waking is not polling.
pub async fn waiters_are_woken_by_a_store_and_a_publish_not_by_polling(f: &Fixture) {
    let slow = (f.slow_polling.open)().await;
    let (broker, backend) = (slow.broker(), slow.results());
    let id = format!("{}woken", f.prefix);
    let waiter = {
        let (backend, id) = (backend.clone(), id.clone());
        tokio::spawn(async move { backend.wait(&id, SLOW_POLL).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let done = TaskResult::success(&id, json!(1), SystemClock.now());
    backend.store(&done, None).await.expect("store");
    let woken = tokio::time::timeout(PATIENCE, waiter).await.expect("woken by the store, not an hour later");
    let woken = woken.expect("join").expect("wait");
    assert_eq!(woken, done);

    if !f.capabilities.consumers_woken {
        return skip(f, "its consumers poll for messages");
    }
    let q = format!("{}woken", f.prefix);
    let mut consumer = broker.consume(&Queues::one(q.clone()), 1).await.expect("consume");
    let next = tokio::spawn(async move {
        let delivery = consumer.next().await;
        (consumer, delivery)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    broker.publish(&q, &[message("wake")]).await.expect("publish");
    let (_consumer, delivery) =
        tokio::time::timeout(PATIENCE, next).await.expect("woken by the publish, not an hour later").expect("join");
    let delivery = delivery.expect("next");
    assert_eq!(delivery.message().headers.task, "wake");
    delivery.ack().await.expect("ack");
}

/// Waiting for a result nobody stores ends with a Timeout error.
pub async fn waiting_for_a_missing_result_times_out(f: &Fixture) {
    let err =
        f.results().wait(&format!("{}missing", f.prefix), Duration::from_millis(100)).await.expect_err("times out");
    assert_eq!(err.kind(), BrokerErrorKind::Timeout);
    assert_eq!(f.results().get(&format!("{}missing", f.prefix)).await.expect("get"), None);
}

/// `get_many` answers in the order asked (`None` where nothing is stored), and a watch
/// over hundreds of tasks reports each once, when it is final: those stored before the
/// watch began and those stored while it waits, not a STARTED one until it ends.
pub async fn results_are_read_many_at_once_and_watched_until_each_is_ready(f: &Fixture) {
    let ids: Vec<String> = (0..500).map(|i| format!("{}many-{i}", f.prefix)).collect();
    let done = |id: &str| TaskResult::success(id, json!(id), SystemClock.now());
    for id in &ids[..100] {
        f.results().store(&done(id), None).await.expect("store");
    }
    f.results().store(&TaskResult::progress(&ids[100], State::Started, json!({})), None).await.expect("store");
    let read = f.results().get_many(&[ids[1].clone(), ids[300].clone(), ids[0].clone()]).await.expect("get_many");
    let values: Vec<Option<serde_json::Value>> = read.into_iter().map(|r| r.map(|r| r.result)).collect();
    assert_eq!(values, vec![Some(json!(ids[1])), None, Some(json!(ids[0]))]);
    let mut watch = ResultWatch::new(f.results().clone()).await.expect("watch");
    watch.watch(&ids).await.expect("watch ids");
    let storer = {
        let (backend, ids) = (f.results().clone(), ids.clone());
        tokio::spawn(async move {
            for id in &ids[100..] {
                backend.store(&TaskResult::success(id, json!(id), SystemClock.now()), None).await.expect("store");
            }
        })
    };
    let mut seen = std::collections::HashMap::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while seen.len() < ids.len() && tokio::time::Instant::now() < deadline {
        for result in watch.next(Duration::from_millis(500)).await.expect("next") {
            assert_eq!(result.status, State::Success, "only final results are reported");
            assert_eq!(result.result, json!(result.task_id));
            *seen.entry(result.task_id).or_insert(0) += 1;
        }
    }
    storer.await.expect("stores");
    assert_eq!(seen.len(), ids.len(), "every task reported within {PATIENCE:?}");
    assert!(seen.values().all(|n| *n == 1), "each once");
    assert!(watch.is_empty());
    assert!(watch.next(Duration::from_millis(100)).await.expect("next").is_empty());
}

/// A stale write (a late STARTED after SUCCESS) does not replace the final result.
pub async fn a_final_result_is_never_overwritten(f: &Fixture) {
    let id = format!("{}final", f.prefix);
    assert!(f.results().store(&TaskResult::success(&id, json!(1), SystemClock.now()), None).await.expect("store"));
    let late = TaskResult::progress(&id, State::Started, json!({}));
    assert!(!f.results().store(&late, None).await.expect("store"), "refused");
    assert_eq!(f.results().get(&id).await.expect("get").expect("stored").status, State::Success);
}

/// A result stored with a TTL is gone after it.
pub async fn results_expire_after_their_ttl(f: &Fixture) {
    let id = format!("{}ttl", f.prefix);
    let r = TaskResult::success(&id, json!(1), SystemClock.now());
    f.results().store(&r, Some(Duration::from_millis(100))).await.expect("store");
    assert!(f.results().get(&id).await.expect("get").is_some());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(f.results().get(&id).await.expect("get").is_none());
}

/// `ack_with_result` either stores the result and acks in one step, or hands the
/// delivery back untouched so the caller can store and ack separately.
pub async fn ack_with_result_stores_and_acks_or_hands_the_delivery_back(f: &Fixture) {
    let q = f.queue("complete");
    let m = message("t");
    let id = m.headers.id.clone();
    f.broker().publish(&q, &[m]).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 1).await.expect("consume");
    let delivery = next_task(&mut consumer).await;
    let result = TaskResult::success(&id, json!("done"), SystemClock.now());
    match delivery.ack_with_result(&result, None).await.expect("complete") {
        None => assert_eq!(f.results().get(&id).await.expect("get"), Some(result), "stored in the same step"),
        Some(back) => back.ack().await.expect("the handed-back delivery still acks"),
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), consumer.next()).await.is_err(),
        "acked: not delivered again"
    );
    assert_eq!(f.broker().len(&q).await.expect("len"), 0);
}

/// Completions arriving together (a busy worker's) may share one write: each still gets
/// its own outcome — its result stored, a final result already there kept — and every
/// message is acked.
pub async fn completions_arriving_together_each_get_their_own_outcome(f: &Fixture) {
    let q = f.queue("together");
    let messages: Vec<Message> = (0..20).map(|_| message("t")).collect();
    f.broker().publish(&q, &messages).await.expect("publish");
    let first = &messages[0].headers.id;
    let kept = TaskResult::success(first, json!("kept"), SystemClock.now());
    assert!(f.results().store(&kept, None).await.expect("store"));
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 20).await.expect("consume");
    let mut completing = tokio::task::JoinSet::new();
    for _ in 0..messages.len() {
        let delivery = next_task(&mut consumer).await;
        let id = delivery.message().headers.id.clone();
        completing.spawn(async move {
            let result = TaskResult::success(&id, json!(id.clone()), SystemClock.now());
            match delivery.ack_with_result(&result, None).await.expect("complete") {
                None => {}
                Some(back) => back.ack().await.expect("the handed-back delivery still acks"),
            }
        });
    }
    while let Some(done) = completing.join_next().await {
        done.expect("a completion");
    }
    for m in &messages {
        let id = &m.headers.id;
        let stored = f.results().get(id).await.expect("get");
        let want = if id == first { json!("kept") } else { json!(id) };
        // Brokers that hand the delivery back store nothing here (the worker would).
        if let Some(stored) = stored {
            assert_eq!(stored.result, want, "task {id}");
        }
    }
    assert_eq!(f.broker().len(&q).await.expect("len"), 0, "every message acked");
}

/// Publishing a message whose task id is already queued or held (a retry does this)
/// gives a second, independent message: settling one never touches the other.
pub async fn a_task_id_published_again_is_a_separate_message(f: &Fixture) {
    let q = f.queue("same-id");
    let first = message("t");
    f.broker().publish(&q, std::slice::from_ref(&first)).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 1).await.expect("consume");
    let held = next_task(&mut consumer).await;
    let mut again = first.clone();
    again.headers.retries = 1;
    f.broker().publish(&q, &[again]).await.expect("publish again");
    held.ack().await.expect("ack the first copy");
    let second = next_task(&mut consumer).await;
    assert_eq!(
        (second.message().headers.id.as_str(), second.message().headers.retries),
        (first.headers.id.as_str(), 1)
    );
    second.ack().await.expect("ack the second copy");
    assert_eq!(f.broker().len(&q).await.expect("len"), 0);
}

/// A chord's members are counted by index: a redelivered member overwrites its own
/// entry, and the set is complete (results in member order) once every index is in.
pub async fn a_chord_completes_when_every_member_is_in_counting_each_once(f: &Fixture) {
    if f.capabilities.chords != ChordCounting::CountEachOnce {
        return skip(f, "its chords are claimed once (Celery 5.7), tested with the broker");
    }
    let group = format!("{}chord", f.prefix);
    let part =
        |i: u32, value: serde_json::Value| TaskResult::success(&format!("{group}-{i}"), value, SystemClock.now());
    let ttl = Some(Duration::from_secs(60));
    let record = |i: u32, r: TaskResult| {
        let (chords, group) = (f.backend.chords().clone(), group.clone());
        async move { chords.chord_part(&group, i, Some(3), &r, ttl).await.expect("chord_part") }
    };
    assert_eq!(record(2, part(2, json!("c"))).await, None);
    assert_eq!(record(0, part(0, json!("first try"))).await, None);
    assert_eq!(record(0, part(0, json!("a"))).await, None, "a redelivered member counts once");
    let all = record(1, part(1, json!("b"))).await.expect("complete with the last member");
    let values: Vec<_> = all.iter().map(|r| r.result.clone()).collect();
    assert_eq!(values, vec![json!("a"), json!("b"), json!("c")], "in member order, latest write of each");
    assert!(record(1, part(1, json!("b"))).await.is_some(), "a redelivery of a member of a complete set sees it");
}

/// Revocations come back in the order recorded, only those after the cursor, and not
/// once expired.
pub async fn revocations_are_read_in_order_after_a_cursor(f: &Fixture) {
    let mut cursor = 0;
    loop {
        let (seen, next) = f.backend.revocations().revocations(cursor).await.expect("read");
        if seen.is_empty() {
            break;
        }
        cursor = next;
    }
    // Milliseconds: what every backend keeps of a revocation's expiry.
    let now = chrono::SubsecRound::trunc_subsecs(SystemClock.now(), 3);
    let revocation = |id: &str, terminate: bool, ttl_secs: i64| Revocation {
        task_id: format!("{}{id}", f.prefix),
        terminate,
        expires_at: now + chrono::Duration::seconds(ttl_secs),
    };
    let (a, b, gone) = (revocation("a", false, 60), revocation("b", true, 60), revocation("gone", false, -1));
    for r in [&a, &gone, &b] {
        f.backend.revocations().revoke(r).await.expect("revoke");
    }
    let (seen, next) = f.backend.revocations().revocations(cursor).await.expect("read");
    let ours: Vec<_> = seen.into_iter().filter(|r| r.task_id.starts_with(&f.prefix)).collect();
    assert_eq!(ours, vec![a, b], "in order, expired ones left out");
    let (later, _) = f.backend.revocations().revocations(next).await.expect("read again");
    assert!(later.iter().all(|r| !r.task_id.starts_with(&f.prefix)), "nothing before the cursor again");
}

/// A consumer stopped while a delayed message waits (in the broker, or held by the
/// consumer where the transport delivers at once) leaves it for the next consumer when
/// due, not after some recovery timeout.
pub async fn a_stopped_consumer_leaves_a_delayed_message_for_the_next(f: &Fixture) {
    let q = f.queue("handback");
    let later = Signature::new("later").countdown(Duration::from_millis(300)).to_message(SystemClock.now(), "t");
    f.broker().publish(&q, std::slice::from_ref(&later)).await.expect("publish");
    let mut first = f.broker().consume(&Queues::one(q.clone()), 4).await.expect("consume");
    assert!(tokio::time::timeout(Duration::from_millis(100), first.next()).await.is_err(), "not due yet");
    drop(first);
    let mut second = f.broker().consume(&Queues::one(q.clone()), 4).await.expect("consume");
    let delivery = tokio::time::timeout(Duration::from_secs(5), second.next())
        .await
        .expect("delivered when due")
        .expect("delivery");
    assert_eq!(delivery.message().headers.id, later.headers.id);
    delivery.ack().await.expect("ack");
}

/// The counts of `queue` as the broker reports them.
async fn counts_of(inspect: &dyn Inspect, queue: &str) -> artel_core::QueueCounts {
    let counts = inspect.queue_counts().await.expect("queue counts");
    counts.into_iter().find(|c| c.queue == queue).unwrap_or_default()
}

/// `artel queues` and `artel dead`: a rejected message is counted as dead, listed with its
/// reason and task id, put back by a retry, and gone after a purge.
pub async fn queues_are_counted_and_dead_letters_listed_retried_and_purged(f: &Fixture) {
    let (Some(inspect), Some(control)) = (f.backend.inspect(), f.backend.control()) else {
        return skip(f, "it neither counts queues nor keeps dead letters");
    };
    let q = f.queue("admin");
    let bad = message("bad");
    f.broker().publish(&q, &[bad.clone(), message("good")]).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 1).await.expect("consume");
    let delivery = next_task(&mut consumer).await;
    assert_eq!(delivery.message().headers.id, bad.headers.id);
    delivery.reject("not this one").await.expect("reject");
    drop(consumer);
    let counts = counts_of(inspect.as_ref(), &q).await;
    assert_eq!((counts.ready, counts.dead), (1, 1), "{counts:?}");
    let dead = inspect.dead_list(Some(&q), 10).await.expect("dead list");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].task_id.as_str(), dead[0].reason.as_str()), (bad.headers.id.as_str(), "not this one"));
    assert_eq!(control.dead_retry(Some(&q)).await.expect("retry"), 1);
    let counts = counts_of(inspect.as_ref(), &q).await;
    assert_eq!((counts.ready, counts.dead), (2, 0), "{counts:?}");
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 1).await.expect("consume");
    next_task(&mut consumer).await.reject("again").await.expect("reject");
    assert_eq!(control.dead_purge(Some(&q)).await.expect("purge"), 1);
    assert_eq!(counts_of(inspect.as_ref(), &q).await.dead, 0);
}

/// `artel stats`: a worker's report is listed with its stats until it leaves, and a stop
/// asked of it reaches it with its next report.
pub async fn workers_report_and_leave(f: &Fixture) {
    let Some(registry) = f.backend.workers() else { return skip(f, "it keeps no worker reports") };
    let name = format!("{}worker@test", f.prefix);
    assert!(!registry.report_worker(&name, &json!({"received": 3})).await.expect("report"), "no stop asked");
    let reports = registry.workers().await.expect("workers");
    let report = reports.iter().find(|r| r.name == name).expect("the worker is listed");
    assert_eq!(report.stats["received"], json!(3));
    assert!(report.heartbeat_at_ms > 0);
    // A stop asked of it (the dashboard's "stop") is taken by its next report, once.
    assert!(!registry.request_stop(&format!("{name}-nobody")).await.expect("ask"), "no such worker");
    assert!(registry.request_stop(&name).await.expect("ask"), "asked");
    assert_eq!(registry.workers().await.expect("workers").len(), reports.len(), "a request is not a worker");
    assert!(registry.report_worker(&name, &json!({"received": 4})).await.expect("report"), "told to stop");
    assert!(!registry.report_worker(&name, &json!({"received": 5})).await.expect("report"), "told once");
    registry.worker_gone(&name).await.expect("gone");
    assert!(!registry.workers().await.expect("workers").iter().any(|r| r.name == name), "it left");
}

/// `--burst` and `artel queues` count messages not yet acknowledged: waiting and held
/// alike, capped at `up_to`.
pub async fn unfinished_messages_count_waiting_and_held_ones(f: &Fixture) {
    let Some(inspect) = f.backend.inspect() else { return skip(f, "it cannot count unfinished messages") };
    let q = f.queue("unfinished");
    assert_eq!(inspect.unfinished(&q, 10).await.expect("count"), 0);
    f.broker().publish(&q, &[message("a"), message("b")]).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 1).await.expect("consume");
    let held = next_task(&mut consumer).await;
    assert_eq!(inspect.unfinished(&q, 10).await.expect("count"), 2, "one waiting, one held");
    assert_eq!(inspect.unfinished(&q, 1).await.expect("count"), 1, "capped");
    held.ack().await.expect("ack");
    assert_eq!(inspect.unfinished(&q, 10).await.expect("count"), 1);
}

/// A leasing consumer with a backlog claims the next batch once half its buffer is handed
/// out, never holding more than `prefetch` undelivered; dropped, it hands back everything
/// it did not deliver, the batch claimed ahead included.
pub async fn a_consumer_claims_ahead_of_its_buffer_but_never_beyond_prefetch(f: &Fixture) {
    let (Some(_), Some(inspect)) = (&f.leases, f.backend.inspect()) else {
        return skip(f, "its messages are not leased or it cannot count them");
    };
    let q = f.queue("ahead");
    let messages: Vec<Message> = (0..10).map(|_| message("t")).collect();
    f.broker().publish(&q, &messages).await.expect("publish");
    let mut consumer = f.broker().consume(&Queues::one(q.clone()), 4).await.expect("consume");
    let delivered = [next_task(&mut consumer).await, next_task(&mut consumer).await];
    // 2 delivered, 2 left in the buffer, 2 claimed ahead.
    let inspect = inspect.as_ref();
    assert_eq!(ready_and_leased(inspect, &q, (4, 6)).await, (4, 6), "(ready, leased) once half the buffer is out");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = counts_of(inspect, &q).await;
    assert_eq!((counts.ready, counts.leased), (4, 6), "no more while nothing more is asked for");
    drop(delivered);
    drop(consumer);
    assert_eq!(ready_and_leased(inspect, &q, (10, 0)).await, (10, 0), "everything undelivered handed back");
}

/// A queue's (ready, leased) counts once they are `want`, or after [`PATIENCE`].
async fn ready_and_leased(inspect: &dyn Inspect, queue: &str, want: (u64, u64)) -> (u64, u64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let counts = counts_of(inspect, queue).await;
        if (counts.ready, counts.leased) == want || Instant::now() > deadline {
            return (counts.ready, counts.leased);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A holder that dies (no ack, no heartbeat) loses its message when the lease lapses, not
/// before, and the next delivery counts the lost one.
pub async fn a_crashed_holders_message_is_delivered_again_after_the_lease(f: &Fixture) {
    let Some(leases) = &f.leases else { return skip(f, "its messages are not leased") };
    let q = f.queue("crashed");
    f.broker().publish(&q, &[message("t")]).await.expect("publish");
    let crashed_at = Instant::now();
    let id = claim_and_crash(leases, &q);
    let broker = (leases.open)().await;
    let mut consumer = broker.consume(&Queues::one(q.clone()), 1).await.expect("consume");
    let again = next_task(&mut consumer).await;
    assert_eq!(again.message().headers.id, id);
    assert!(crashed_at.elapsed() >= leases.lease - Duration::from_millis(50), "not before the lease lapsed");
    if again.deliveries() != 0 {
        assert_eq!(again.deliveries(), 2, "the delivery lost with its holder counts");
    }
    again.ack().await.expect("ack");
    assert_eq!(f.broker().len(&q).await.expect("len"), 0);
}

/// A live holder's heartbeat keeps its lease for as long as the task runs.
pub async fn a_live_holders_heartbeat_keeps_its_lease(f: &Fixture) {
    let Some(leases) = &f.leases else { return skip(f, "its messages are not leased") };
    let q = f.queue("held");
    f.broker().publish(&q, &[message("long")]).await.expect("publish");
    let holder_broker = (leases.open)().await;
    let mut holder = holder_broker.consume(&Queues::one(q.clone()), 1).await.expect("consume");
    let held = next_task(&mut holder).await;
    let rival_broker = (leases.open)().await;
    let mut rival = rival_broker.consume(&Queues::one(q.clone()), 1).await.expect("consume");
    // Three lease periods: without the heartbeat the rival would have taken it.
    assert!(tokio::time::timeout(leases.lease * 3, rival.next()).await.is_err(), "the lease was kept");
    held.ack().await.expect("ack");
}

/// A holder frozen past its lease (its heartbeat never ran) cannot settle the message
/// another worker rescued meanwhile: its late ack changes nothing.
pub async fn a_stale_holders_ack_does_not_settle_the_rescued_message(f: &Fixture) {
    let Some(leases) = &f.leases else { return skip(f, "its messages are not leased") };
    if !f.capabilities.stale_acks_refused {
        return skip(f, "an ack settles a message by its delivery tag, whoever holds it now");
    }
    let q = f.queue("stale");
    f.broker().publish(&q, &[message("t")]).await.expect("publish");
    // The stale holder lives on a current-thread runtime that is not driven between its
    // claim and its ack: its heartbeat never runs, as in a worker frozen past its lease.
    let (stalled, stale) = tokio::task::block_in_place(|| {
        let stalled = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let stale = stalled.block_on(async {
            let broker = (leases.open)().await;
            let mut consumer = broker.consume(&Queues::one(q.clone()), 1).await.expect("consume");
            let delivery = next_task(&mut consumer).await;
            #[allow(clippy::mem_forget)] // the frozen worker never gives its consumer up
            std::mem::forget(consumer);
            (broker, delivery)
        });
        (stalled, stale)
    });
    let rescuer_broker = (leases.open)().await;
    let mut rescuer = rescuer_broker.consume(&Queues::one(q.clone()), 1).await.expect("consume");
    let rescued = next_task(&mut rescuer).await;
    let (_stale_broker, stale) = stale;
    assert_eq!(rescued.message().headers.id, stale.message().headers.id);
    tokio::task::block_in_place(|| stalled.block_on(stale.ack())).expect("a stale ack is a no-op, not an error");
    if let Some(inspect) = f.backend.inspect() {
        assert_eq!(inspect.unfinished(&q, 10).await.expect("count"), 1, "the rescuer still holds it");
    }
    rescued.ack().await.expect("ack");
    if let Some(inspect) = f.backend.inspect() {
        assert_eq!(inspect.unfinished(&q, 10).await.expect("count"), 0);
    }
    tokio::task::block_in_place(|| drop(stalled));
}
