//! A worker that is told to stop now never lets a task run twice at once: a message goes
//! back to the queue only once its run has really stopped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use artel::core::{Inspect, QueueCounts};
use artel::pool::Pool;
use artel::{Connection, Registry, Signature, State, Stop, Worker, WorkerConfig, connect};
use artel_broker_tests::ScratchDb;

/// Sleeps on a blocking thread: a run the worker cannot stop.
#[artel::task(blocking)]
fn nap(millis: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(millis));
    millis
}

/// Sleeps at an await point: a run the worker stops by dropping it.
#[artel::task]
async fn doze(millis: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    millis
}

async fn counts(connection: &Connection) -> (u64, u64) {
    let admin: &dyn Inspect = connection.backend.inspect().map(AsRef::as_ref).expect("sqlite counts queues");
    let all: Vec<QueueCounts> = admin.queue_counts().await.expect("counts");
    all.iter().fold((0, 0), |(ready, held), c| (ready + c.ready, held + c.leased))
}

/// Starts a worker for one task and waits until that task is running; returns the stop
/// handle and the worker's join handle.
async fn running(
    connection: &Connection,
    signature: Signature,
) -> (String, Stop, tokio::task::JoinHandle<Result<(), artel::core::BrokerError>>) {
    let message = signature.to_message(artel::core::Clock::now(&artel::core::SystemClock), "test");
    let id = message.headers.id.clone();
    connection.backend.broker().publish(message.queue(), std::slice::from_ref(&message)).await.expect("publish");
    let registry = Arc::new(Registry::new().with(nap).with(doze));
    let config = WorkerConfig { concurrency: 1, prefetch: 1, track_started: true, ..WorkerConfig::default() };
    let worker = Worker::new(&connection.backend, registry, config);
    let stop = Stop::default();
    let join = tokio::spawn({
        let stop = stop.clone();
        async move {
            let pool = Pool::builder().on_runtime(tokio::runtime::Handle::current()).build().expect("pool");
            worker.run(&pool, stop).await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while connection.backend.results().get(&id).await.expect("get").is_none_or(|r| r.status != State::Started) {
        assert!(Instant::now() < deadline, "the task never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (id, stop, join)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_stop_hands_an_async_tasks_message_back_once_it_is_dropped() {
    let db = ScratchDb::new("stop-async");
    let connection = connect(&format!("sqlite://{}?poll_ms=10", db.path().display())).await.expect("open");
    let (id, stop, join) = running(&connection, doze::s(60_000).into_signature().expect("signature")).await;
    let stopped_at = Instant::now();
    stop.now();
    join.await.expect("joined").expect("the worker returns cleanly");
    assert!(stopped_at.elapsed() < Duration::from_secs(2), "returned {:?} after the stop", stopped_at.elapsed());
    assert_eq!(counts(&connection).await, (1, 0), "ready again at once, held by no one");
    let stored = connection.backend.results().get(&id).await.expect("get").expect("STARTED");
    assert_eq!(stored.status, State::Started, "no outcome is stored for a run that was stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_stop_keeps_a_blocking_tasks_message_until_its_thread_ends() {
    let db = ScratchDb::new("stop-blocking");
    let connection = connect(&format!("sqlite://{}?poll_ms=10", db.path().display())).await.expect("open");
    let (_id, stop, join) = running(&connection, nap::s(3_000).into_signature().expect("signature")).await;
    let stopped_at = Instant::now();
    stop.now();
    join.await.expect("joined").expect("the worker returns cleanly");
    assert!(stopped_at.elapsed() < Duration::from_secs(1), "the worker does not wait for the thread");
    assert_eq!(counts(&connection).await, (0, 1), "still held: its thread is still running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while counts(&connection).await != (1, 0) {
        assert!(Instant::now() < deadline, "never handed back after its thread ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stopped_at.elapsed() >= Duration::from_millis(2_000), "not before the thread ended");
}
