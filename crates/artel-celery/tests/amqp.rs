//! The conformance suite on RabbitMQ in Celery's AMQP layout (results in Celery's Redis
//! result backend), each test on its own scratch queues (x-expires) and key prefix.
//!
//! `ARTEL_AMQP_URL` picks the server (default `amqp://guest:guest@127.0.0.1:5672/%2f`).
//! RabbitMQ differs where Celery's AMQP transport does (see the fixture's capabilities):
//! the scratch queues have no `x-max-priority`, one consumer per queue interleaves them, a
//! delayed message waits in the queue held by its consumer, a requeued message may come
//! straight back to the same consumer (tested below), and chords are Celery's claim.

use std::sync::Arc;
use std::time::Duration;

use artel_broker_tests::{Capabilities, ChordCounting, Fixture, PriorityOrder, SlowPolling, conformance};
use artel_celery::amqp::{Amqp, AmqpConfig};
use artel_celery::{CeleryRedis, CeleryRedisConfig};
use artel_core::Queues;
use artel_core::{Backend, Broker, Clock, Signature, SystemClock};

fn amqp_url() -> String {
    std::env::var("ARTEL_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

fn redis_url() -> String {
    std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// Deletes the test's result keys at the end (its queues expire by themselves).
struct DropPrefix(String);

impl Drop for DropPrefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(redis_url().as_str()) else { return };
        let Ok(mut conn) = client.get_connection() else { return };
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}*", self.0)).query(&mut conn).unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

async fn open() -> Option<(Amqp, CeleryRedis, DropPrefix, String)> {
    let unique = format!("artel-test-{}", uuid::Uuid::new_v4());
    let config = AmqpConfig {
        max_priority: None,
        queue_expires: Some(Duration::from_secs(60)),
        dead_queue: Some(format!("{unique}-dead")),
        ..Default::default()
    };
    let broker = match Amqp::connect(&amqp_url(), config).await {
        Ok(broker) => broker,
        Err(error) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("RabbitMQ is required (ARTEL_REQUIRE_SERVICES=1) but unreachable: {error}")
        }
        Err(error) => {
            eprintln!("skipped: no RabbitMQ at {} ({error}); set ARTEL_AMQP_URL", amqp_url());
            return None;
        }
    };
    let prefix = format!("{unique}:");
    let results = CeleryRedisConfig { prefix: prefix.clone(), ..CeleryRedisConfig::default() };
    let backend = CeleryRedis::connect(&redis_url(), results).await.expect("Redis for results");
    let broker = broker.with_delivery_counts(backend.clone());
    Some((broker, backend, DropPrefix(prefix), format!("{unique}-")))
}

async fn amqp_fixture() -> Option<Fixture> {
    let (broker, backend, cleanup, prefix) = open().await?;
    let backend = Backend::new(Arc::new(broker), backend);
    let capabilities = Capabilities {
        priority: PriorityOrder::Ignored,
        queues_in_order: false,
        broker_holds_delayed: false,
        requeue_reaches_others: false,
        chords: ChordCounting::ClaimOnce,
        stale_acks_refused: false,
        fair_groups: false,
        consumers_woken: true,
    };
    // RabbitMQ pushes and results arrive by subscription: nothing here polls.
    let slow_polling = {
        let backend = backend.clone();
        SlowPolling { open: Box::new(move || Box::pin(std::future::ready(backend.clone()))) }
    };
    Some(Fixture { backend, prefix, kept: 0, leases: None, slow_polling, capabilities, cleanup: Box::new(cleanup) })
}

conformance!(match amqp_fixture().await {
    Some(fixture) => fixture,
    None => return,
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_is_held_unacknowledged_until_due() {
    let Some((broker, _backend, _cleanup, prefix)) = open().await else { return };
    let q = format!("{prefix}delayed");
    let now = SystemClock.now();
    let later = Signature::new("later").countdown(Duration::from_millis(400)).to_message(now, "t");
    let sent = std::time::Instant::now();
    broker.publish(&q, &[later, Signature::new("now").to_message(now, "t")]).await.expect("publish");
    let mut consumer = broker.consume(&Queues::one(q.clone()), 1).await.expect("consume");
    let first = consumer.next().await.expect("delivery");
    assert_eq!(first.message().headers.task, "now", "a held ETA message does not use up the prefetch of 1");
    first.ack().await.expect("ack");
    let second = consumer.next().await.expect("delivery");
    assert_eq!(second.message().headers.task, "later");
    assert!(sent.elapsed() >= Duration::from_millis(390), "delivered after {:?}", sent.elapsed());
    second.ack().await.expect("ack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requeued_message_comes_back() {
    let Some((broker, _backend, _cleanup, prefix)) = open().await else { return };
    let q = format!("{prefix}requeue");
    let sent = Signature::new("t").to_message(SystemClock.now(), "t");
    broker.publish(&q, std::slice::from_ref(&sent)).await.expect("publish");
    let mut consumer = broker.consume(&Queues::one(q.clone()), 1).await.expect("consume");
    consumer.next().await.expect("delivery").requeue().await.expect("requeue");
    let again = consumer.next().await.expect("delivered again");
    assert_eq!(again.message().headers.id, sent.headers.id);
    assert_eq!(again.message().properties.delivery_info.extra.get("redelivered"), Some(&serde_json::json!(true)));
    again.ack().await.expect("ack");
    assert_eq!(broker.len(&q).await.expect("len"), 0);
}

/// RabbitMQ only says "redelivered"; artel counts the deliveries lost with their
/// consumer (in the result backend's Redis), not those handed back, so a poison message
/// can be quarantined on amqp:// too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_lost_with_their_channel_count_and_prefetched_ones_do_not() {
    let Some((broker, _backend, _cleanup, prefix)) = open().await else { return };
    let q = format!("{prefix}lost");
    let batch = [
        Signature::new("poison").to_message(SystemClock.now(), "t"),
        Signature::new("next").to_message(SystemClock.now(), "t"),
    ];
    broker.publish(&q, &batch).await.expect("publish");
    for lost in 1..=2 {
        let mut consumer = broker.consume(&Queues::one(q.clone()), 2).await.expect("consume");
        let mut delivery = consumer.next().await.expect("delivery");
        assert_eq!((delivery.message().headers.task.as_str(), delivery.deliveries()), ("poison", lost));
        // The worker dies running it: nothing settles it, its channel closes.
        delivery.keep_on_drop();
        drop(delivery);
        drop(consumer);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut consumer = broker.consume(&Queues::one(q.clone()), 2).await.expect("consume");
    let third = consumer.next().await.expect("delivery");
    assert_eq!(third.deliveries(), 3, "two deliveries were lost");
    third.ack().await.expect("ack");
    let next = consumer.next().await.expect("delivery");
    assert_eq!((next.message().headers.task.as_str(), next.deliveries()), ("next", 1), "prefetched twice, never lost");
    next.ack().await.expect("ack");
}

mod hostile {
    //! Whatever headers and body a producer publishes to a queue, the consumer delivers it
    //! for the worker to run or dead-letter: never an error that would stop the worker,
    //! and a readable `id` header kept so the FAILURE can be stored under it.

    use artel_broker_tests::hostile::block_on;
    use artel_core::Broker;
    use lapin::options::BasicPublishOptions;
    use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
    use lapin::{BasicProperties, Connection, ConnectionProperties};
    use proptest::prelude::*;

    /// Header values of every kind RabbitMQ passes on (it refuses non-finite doubles).
    fn values() -> impl Strategy<Value = AMQPValue> {
        prop_oneof![
            Just(AMQPValue::Void),
            any::<bool>().prop_map(AMQPValue::Boolean),
            any::<i64>().prop_map(AMQPValue::LongLongInt),
            prop::num::f64::NORMAL.prop_map(AMQPValue::Double),
            prop::sample::select(vec!["x", "", "2026-13-45T00:00:00", "2026-01-01T00:00:00+00:00", "echo"])
                .prop_map(|s| AMQPValue::LongString(LongString::from(s))),
            any::<Vec<u8>>().prop_map(|b| AMQPValue::LongString(LongString::from(b))),
            Just(AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::Double(1e308), AMQPValue::Void]))),
            Just(AMQPValue::FieldTable(FieldTable::default())),
        ]
    }

    fn headers() -> impl Strategy<Value = FieldTable> {
        let field = prop::sample::select(vec![
            "id",
            "task",
            "eta",
            "expires",
            "timelimit",
            "retries",
            "group_index",
            "ignore_result",
            "x-junk",
        ]);
        prop::collection::vec((field, values()), 0..8).prop_map(|entries| {
            let mut table = FieldTable::default();
            for (key, value) in entries {
                table.insert(ShortString::from(key), value);
            }
            table
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn any_headers_and_body_are_delivered_to_be_dead_lettered_never_lost(
            headers in headers(),
            body in any::<Vec<u8>>(),
        ) {
            block_on(async {
                let Some((broker, _backend, _cleanup, prefix)) = super::open().await else { return };
                let queue = format!("{prefix}hostile");
                let mut consumer = broker.consume(&artel_core::Queues::one(queue.clone()), 1).await.expect("consume");
                let properties = ConnectionProperties::default()
                    .with_executor(tokio_executor_trait::Tokio::current())
                    .with_reactor(tokio_reactor_trait::Tokio::current());
                let producer = Connection::connect(&super::amqp_url(), properties).await.expect("connect");
                let channel = producer.create_channel().await.expect("channel");
                let id = match headers.inner().get("id") {
                    Some(AMQPValue::LongString(id)) => std::str::from_utf8(id.as_bytes()).ok().map(str::to_owned),
                    _ => None,
                };
                let properties = BasicProperties::default().with_headers(headers);
                channel
                    .basic_publish("", queue.as_str(), BasicPublishOptions::default(), &body, properties)
                    .await
                    .expect("publish")
                    .await
                    .expect("confirm");
                let delivery = tokio::time::timeout(std::time::Duration::from_secs(10), consumer.next())
                    .await
                    .expect("delivered within 10 s")
                    .expect("one message never fails the consumer");
                if let Some(id) = id {
                    assert_eq!(delivery.message().headers.id, id, "the id is kept for the FAILURE result");
                }
                delivery.reject("dead-lettered by the property test").await.expect("reject");
                assert_eq!(broker.len(&queue).await.expect("len"), 0, "nothing left behind");
                let _ = producer.close(200, "done").await;
            });
        }
    }
}
