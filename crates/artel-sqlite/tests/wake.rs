//! Two brokers on one file, each polling once an hour (as two processes would be): the
//! other's publishes and stored results still wake their waiters at once, through the
//! datagram sockets beside the file; dead sockets are cleared and live ones removed with
//! their broker.

use std::sync::Arc;
use std::time::Duration;

use artel_broker_tests::{SLOW_POLL, ScratchDb};
use artel_core::{Broker, Clock, Queues, Signature, SystemClock, TaskResult};
use artel_sqlite::{SqliteBroker, SqliteConfig};

fn slow(path: &std::path::Path) -> SqliteBroker {
    let config = SqliteConfig { poll_interval: SLOW_POLL, result_poll: SLOW_POLL, ..SqliteConfig::default() };
    SqliteBroker::open_with(path, config, Arc::new(SystemClock)).expect("open")
}

fn sockets(db: &ScratchDb) -> Vec<String> {
    let dir = format!("{}.wake", db.path().display());
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned())).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_brokers_publish_and_store_wake_waiters_without_polling() {
    let db = ScratchDb::new("wake");
    let (here, there) = (slow(db.path()), slow(db.path()));
    let patience = Duration::from_secs(5);

    let results = there.backend().results().clone();
    let waiting = tokio::spawn(async move { results.wait("woken", SLOW_POLL).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let done = TaskResult::success("woken", serde_json::json!(1), SystemClock.now());
    here.backend().results().store(&done, None).await.expect("store");
    let woken = tokio::time::timeout(patience, waiting).await.expect("woken by the other's store, not an hour later");
    assert_eq!(woken.expect("join").expect("wait"), done);

    let mut consumer = there.consume(&Queues::one("q".to_owned()), 1).await.expect("consume");
    let next = tokio::spawn(async move { (consumer.next().await, consumer) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let message = Signature::new("wake").queue("q").to_message(SystemClock.now(), "test");
    here.publish("q", &[message]).await.expect("publish");
    let (delivery, _consumer) = tokio::time::timeout(patience, next)
        .await
        .expect("woken by the other's publish, not an hour later")
        .expect("join");
    let delivery = delivery.expect("next");
    assert_eq!(delivery.message().headers.task, "wake");
    delivery.ack().await.expect("ack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_processs_socket_is_cleared_and_a_dropped_brokers_removed() {
    let db = ScratchDb::new("wake-dead");
    let listener = slow(db.path());
    // A socket whose process is gone: bound, then closed, its file left behind.
    let dir = format!("{}.wake", db.path().display());
    std::fs::create_dir_all(&dir).expect("wake dir");
    drop(std::os::unix::net::UnixDatagram::bind(format!("{dir}/1-deadbeef-p.sock")).expect("bind"));
    let mut consumer = listener.consume(&Queues::one("q".to_owned()), 1).await.expect("consume");
    let next = tokio::spawn(async move { (consumer.next().await, consumer) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sockets(&db).len(), 2, "the dead one and the listener's: {:?}", sockets(&db));

    let sender = slow(db.path());
    let message = Signature::new("t").queue("q").to_message(SystemClock.now(), "test");
    sender.publish("q", &[message]).await.expect("publish");
    let (delivery, consumer) = tokio::time::timeout(Duration::from_secs(5), next).await.expect("woken").expect("join");
    delivery.expect("next").ack().await.expect("ack");
    let left = sockets(&db);
    assert_eq!(left.len(), 1, "the dead socket is gone: {left:?}");
    assert!(!left[0].starts_with("1-deadbeef"), "{left:?}");

    drop(consumer);
    drop(listener);
    // Its heartbeat task lets go of the broker once the runtime drops it.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !sockets(&db).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sockets(&db).is_empty(), "a dropped broker removes its socket: {:?}", sockets(&db));
}
