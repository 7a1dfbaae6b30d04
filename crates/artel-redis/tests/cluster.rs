//! The conformance suite on a Redis Cluster (`redis+cluster://`, 3 masters and 3
//! replicas that `scripts/test` starts), each test under its own key prefix: queues on
//! different masters, results and chord counters routed by their own keys, no script
//! touching two slots.
//!
//! `ARTEL_REDIS_CLUSTER_URL` names the cluster; without it the tests are skipped with a
//! message, unless `ARTEL_REQUIRE_SERVICES=1`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use artel_broker_tests::conformance;
use artel_core::{Broker, Clock, Queues, Signature, SystemClock};
use artel_lock::Locks;
use artel_redis::{RedisBroker, RedisConfig};

fn url() -> Option<String> {
    let url = std::env::var("ARTEL_REDIS_CLUSTER_URL").ok();
    if url.is_none() {
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "the Redis Cluster is required");
        eprintln!("skipped: no ARTEL_REDIS_CLUSTER_URL (scripts/test starts a Redis Cluster)");
    }
    url
}

conformance!(match url() {
    Some(url) => match support::fixture(&url).await {
        Some(fixture) => fixture,
        None => return,
    },
    None => return,
});

async fn broker(url: &str, prefix: &str) -> RedisBroker {
    let config = RedisConfig { prefix: prefix.to_owned(), idle_wait: Duration::from_secs(5), ..RedisConfig::default() };
    RedisBroker::connect_with(url, config, Arc::new(SystemClock)).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The master (`host:port`) serving `key`'s slot, as `CLUSTER SHARDS` would say.
fn master_of(url: &str, key: &str) -> String {
    let seed = url.trim_start_matches("redis+cluster://").split(',').next().expect("a seed node");
    let client = redis::Client::open(format!("redis://{seed}")).expect("seed");
    let mut conn = client.get_connection().expect("seed connection");
    let slot: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut conn).expect("keyslot");
    // Each range: [from, to, [master host, port, id, …], replicas…].
    let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut conn).expect("slots");
    let number = |v: &redis::Value| redis::from_redis_value::<u16>(v.clone()).expect("a slot number");
    let range = ranges.iter().find(|r| (number(&r[0])..=number(&r[1])).contains(&slot)).expect("slot served");
    let master: Vec<redis::Value> = redis::from_redis_value(range[2].clone()).expect("the master's entry");
    let host: String = redis::from_redis_value(master[0].clone()).expect("host");
    format!("{host}:{}", number(&master[1]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_consumer_takes_from_queues_on_different_masters_and_wakes_for_each() {
    let Some(url) = url() else { return };
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let broker = broker(&url, &prefix).await;
    // Queue names whose hash tags land on two different masters.
    let names: Vec<String> = (0..64).map(|i| format!("q{i}")).collect();
    let first = names[0].clone();
    let other = names
        .iter()
        .find(|q| master_of(&url, &format!("{{{q}}}")) != master_of(&url, &format!("{{{first}}}")))
        .expect("a queue on another master")
        .clone();
    let queues = Queues::new(vec![first.clone(), other.clone()]).expect("queues");
    let mut consumer = broker.consume(&queues, 10).await.expect("consume");
    for queue in [&first, &other] {
        let publisher = broker.clone();
        let queue = queue.clone();
        // Published while the consumer is idle: the wake-up, not the 5 s idle wait, brings it.
        let publish = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let message = Signature::new("noop").to_message(SystemClock.now(), "cluster@test");
            publisher.publish(&queue, &[message]).await.expect("publish");
        });
        let started = tokio::time::Instant::now();
        let delivery = tokio::time::timeout(Duration::from_secs(3), consumer.next())
            .await
            .expect("woken well before the idle wait")
            .expect("a delivery");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(delivery.message().headers.task, "noop");
        delivery.ack().await.expect("ack");
        publish.await.expect("publisher");
    }
    assert!(broker.delete_namespace().await.expect("cleanup") > 0, "the test's keys were found on the masters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_and_its_fence_counter_share_a_slot_and_fences_grow() {
    let Some(url) = url() else { return };
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let broker = broker(&url, &prefix).await;
    let locks = broker.locks(Duration::from_secs(5));
    let mut fences = Vec::new();
    for _ in 0..3 {
        let guard = locks.acquire("report", Duration::from_secs(5)).await.expect("acquire");
        assert!(locks.try_acquire("report").await.expect("second try").is_none(), "held once at a time");
        fences.push(guard.fence());
        drop(guard);
    }
    assert!(fences.windows(2).all(|w| w[0] < w[1]), "fences grow: {fences:?}");
    broker.delete_namespace().await.expect("cleanup");
}
