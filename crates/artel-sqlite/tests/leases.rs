//! Leases: a crashed holder's messages come back; a stale holder cannot settle them.
// Forgetting deliveries and consumers is how these tests stand in for a killed process.
#![allow(clippy::mem_forget)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use artel_broker_tests::ScratchDb;
use artel_core::{Admin, Broker, Clock, Signature, SystemClock};
use artel_sqlite::{SqliteBroker, SqliteConfig};

fn temp_db() -> ScratchDb {
    ScratchDb::new("leases")
}

const LEASE: Duration = Duration::from_millis(600);

fn open(db: &ScratchDb) -> SqliteBroker {
    let config = SqliteConfig { lease: LEASE, poll_interval: Duration::from_millis(20), ..SqliteConfig::default() };
    SqliteBroker::open_with(db.path(), config, Arc::new(SystemClock)).expect("open")
}

/// Claims one message in a runtime that is then torn down without releasing anything,
/// as when a worker process is killed: no ack, no release, no more heartbeats.
fn claim_and_crash(db: &ScratchDb, queue: &str) -> String {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let id = runtime.block_on(async {
        let broker = open(db);
        let mut consumer = broker.consume(&[queue.to_owned()], 1).await.expect("consume");
        let delivery = consumer.next().await.expect("delivery");
        let id = delivery.message().headers.id.clone();
        std::mem::forget(delivery);
        std::mem::forget(consumer);
        id
    });
    runtime.shutdown_background();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_holders_message_is_delivered_again_after_the_lease() {
    let db = temp_db();
    let broker = open(&db);
    broker.publish("q", &[Signature::new("t").to_message(SystemClock.now(), "t")]).await.expect("publish");
    let crashed_at = Instant::now();
    let id = tokio::task::block_in_place(|| claim_and_crash(&db, "q"));

    let mut consumer = broker.consume(&["q".to_owned()], 1).await.expect("consume");
    let again =
        tokio::time::timeout(Duration::from_secs(10), consumer.next()).await.expect("in time").expect("delivery");
    assert_eq!(again.message().headers.id, id);
    assert!(crashed_at.elapsed() >= LEASE - Duration::from_millis(50), "not before the lease lapsed");
    assert_eq!(again.deliveries(), 2, "the delivery lost with its holder counts");
    again.ack().await.expect("ack");
    assert_eq!(broker.len("q").await.expect("len"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_holders_heartbeat_keeps_its_lease() {
    let db = temp_db();
    let broker = open(&db);
    broker.publish("q", &[Signature::new("long").to_message(SystemClock.now(), "t")]).await.expect("publish");
    let mut holder = broker.consume(&["q".to_owned()], 1).await.expect("consume");
    let held = holder.next().await.expect("delivery");
    let other = open(&db);
    let mut rival = other.consume(&["q".to_owned()], 1).await.expect("consume");
    // Three lease periods: without the heartbeat the rival would have taken it.
    assert!(tokio::time::timeout(LEASE * 3, rival.next()).await.is_err(), "the lease was kept");
    held.ack().await.expect("ack");
}

#[test]
fn a_stale_holders_ack_does_not_settle_the_rescued_message() {
    let db = temp_db();
    let main = tokio::runtime::Runtime::new().expect("runtime");
    // The stalled holder lives on a current-thread runtime we stop driving: its
    // heartbeat then never runs, as in a worker frozen for longer than its lease.
    let stalled = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let broker = open(&db);
    main.block_on(broker.publish("q", &[Signature::new("t").to_message(SystemClock.now(), "t")])).expect("publish");
    let (_stalled_broker, stale) = stalled.block_on(async {
        let broker = open(&db);
        let mut consumer = broker.consume(&["q".to_owned()], 1).await.expect("consume");
        let delivery = consumer.next().await.expect("delivery");
        std::mem::forget(consumer);
        (broker, delivery)
    });
    let rescued = main.block_on(async {
        let mut rescuer = broker.consume(&["q".to_owned()], 1).await.expect("consume");
        let d =
            tokio::time::timeout(Duration::from_secs(10), rescuer.next()).await.expect("in time").expect("delivery");
        std::mem::forget(rescuer); // keep holding it while the stale holder acks
        d
    });
    assert_eq!(rescued.message().headers.id, stale.message().headers.id);
    stalled.block_on(stale.ack()).expect("a stale ack is a no-op, not an error");
    main.block_on(async {
        let counts = broker.queue_counts().await.expect("counts");
        assert_eq!(counts.iter().map(|c| c.leased).sum::<u64>(), 1, "the rescuer still holds it");
        rescued.ack().await.expect("ack");
        let counts = broker.queue_counts().await.expect("counts");
        assert!(counts.iter().all(|c| c.leased == 0 && c.ready == 0), "{counts:?}");
    });
}
