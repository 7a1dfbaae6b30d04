//! Another process holding the write lock delays writes; it does not lose or fail them.

use std::time::{Duration, Instant};

use artel_broker_tests::ScratchDb;
use artel_core::{Broker, Clock, Signature, SystemClock};
use artel_sqlite::SqliteBroker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_out_a_lock_longer_than_the_busy_timeout() {
    let db = ScratchDb::new("locked");
    let broker = SqliteBroker::open(db.path()).expect("open");
    let held = Duration::from_secs(6); // longer than the 5 s busy timeout: the retry path runs
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let path = db.path().to_owned();
    let locker = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(path).expect("second connection");
        conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        locked_tx.send(()).expect("signal");
        std::thread::sleep(held);
        conn.execute_batch("COMMIT").expect("unlock");
    });
    locked_rx.recv().expect("locked");
    let started = Instant::now();
    let batch: Vec<_> = (0..10).map(|_| Signature::new("t").to_message(SystemClock.now(), "t")).collect();
    broker.publish("q", &batch).await.expect("the publish waits for the lock instead of failing");
    assert!(started.elapsed() >= held - Duration::from_millis(500), "it did wait: {:?}", started.elapsed());
    locker.join().expect("locker");
    assert_eq!(broker.len("q").await.expect("len"), 10, "nothing lost");
}
