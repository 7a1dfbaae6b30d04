//! What a worker does when the broker or the result backend fails under it: the message
//! goes back to the queue and runs again, so no outcome is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use artel_broker_tests::faults::{Faults, faulty};
use artel_core::memory::{MemoryBackend, MemoryBroker};
use artel_core::{
    Arguments, Backend, BoxFuture, Broker, Clock, Context, Registry, ResultBackend, Signature, State, SystemClock,
    Task, TaskError,
};
use artel_pool::Pool;
use artel_runtime::{Stop, Worker, WorkerConfig};

/// Returns how many times it has run; asks for a retry on its first run when `retry_first`.
struct Counted {
    runs: Arc<AtomicU32>,
    retry_first: bool,
}

impl Task for Counted {
    const NAME: &'static str = "counted";
    type Output = u32;

    fn run(&self, _: Arguments, _: Context) -> BoxFuture<'static, Result<u32, TaskError>> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let retry = self.retry_first && run == 1;
        Box::pin(async move {
            if retry {
                return Err(TaskError::retry("once more").after(Duration::ZERO));
            }
            Ok(run)
        })
    }
}

/// Runs one `counted` call on a worker whose broker and backend fail as `set_faults`
/// says; returns its final result's value and how many times it ran.
async fn run_once(retry_first: bool, set_faults: impl FnOnce(&Faults)) -> (serde_json::Value, u32) {
    let (broker, backend) = (Arc::new(MemoryBroker::new()), MemoryBackend::new());
    let message = Signature::new("counted").to_message(SystemClock.now(), "test");
    let id = message.headers.id.clone();
    broker.publish("celery", &[message]).await.expect("publish");
    let faults = Arc::new(Faults::default());
    set_faults(&faults);
    let runs = Arc::new(AtomicU32::new(0));
    let worker = Worker::new(
        &faulty(&Backend::new(broker, backend.clone()), faults),
        Arc::new(Registry::new().with(Counted { runs: runs.clone(), retry_first })),
        WorkerConfig::default(),
    );
    let pool = Pool::builder().on_runtime(tokio::runtime::Handle::current()).build().expect("pool");
    let stop = Stop::default();
    let running = tokio::spawn({
        let stop = stop.clone();
        async move { worker.run(&pool, stop).await }
    });
    let result = backend.wait(&id, Duration::from_secs(10)).await.expect("a final result");
    stop.warm.cancel();
    running.await.expect("the worker task").expect("a clean stop");
    assert_eq!(result.status, State::Success, "{result:?}");
    (result.result, runs.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_cannot_be_stored_sends_the_message_back_to_run_again() {
    let (value, runs) = run_once(false, |faults| faults.fail_stores(1)).await;
    assert_eq!((value, runs), (serde_json::json!(2), 2), "the first outcome was lost with its store, not the task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_that_cannot_be_published_sends_the_message_back_to_run_again() {
    let (value, runs) = run_once(true, |faults| faults.fail_publishes(1)).await;
    assert_eq!((value, runs), (serde_json::json!(2), 2), "the message came back instead of vanishing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_faults_a_retry_is_published_and_runs() {
    let (value, runs) = run_once(true, |_| {}).await;
    assert_eq!((value, runs), (serde_json::json!(2), 2));
}
