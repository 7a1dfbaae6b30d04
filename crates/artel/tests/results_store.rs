//! Where a worker stores results: in its result backend, in one step with the ack when
//! that backend is the broker's own store, and never in the broker when it is not.

use std::sync::Arc;
use std::time::Duration;

use artel::core::memory::MemoryBackend;
use artel::core::{Backend, ResultBackend, SystemClock};
use artel::sqlite::SqliteBroker;
use artel::{App, Registry, WorkerConfig};
use artel_broker_tests::ScratchDb;

#[artel::task]
async fn double(x: i64) -> i64 {
    x * 2
}

fn sqlite(db: &ScratchDb) -> SqliteBroker {
    SqliteBroker::open_with(db.path(), Default::default(), Arc::new(SystemClock)).expect("open")
}

async fn run_one(backend: Backend) -> String {
    let app = App::with_worker(backend, Registry::new().with(double), WorkerConfig::default()).expect("app");
    let sent = double::delay(&app, 21).await.expect("send");
    assert_eq!(sent.get(Duration::from_secs(10)).await.expect("result"), 42);
    let id = sent.id().to_owned();
    app.shutdown().await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_go_to_the_brokers_own_store_when_it_is_the_backend() {
    let db = ScratchDb::new("results-here");
    let broker = sqlite(&db);
    let id = run_one(broker.backend()).await;
    assert!(broker.get(&id).await.expect("get").is_some_and(|r| r.status.is_ready()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_go_to_another_backend_and_not_to_the_broker() {
    let db = ScratchDb::new("results-elsewhere");
    let broker = sqlite(&db);
    let backend = MemoryBackend::new();
    let id = run_one(Backend::new(Arc::new(broker.clone()), backend.clone())).await;
    assert!(backend.get(&id).await.expect("get").is_some(), "stored in the backend");
    assert_eq!(broker.get(&id).await.expect("get"), None, "not in the broker's own store");
}
