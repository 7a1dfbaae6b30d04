//! The conformance suite on Celery's Redis layout, each test under its own kombu
//! `global_keyprefix`, plus the behaviours where kombu's layout decides differently.
//!
//! kombu's layout differs from artel's brokers where Celery's does (see the fixture's
//! capabilities): priority 0 is served first, a delayed message waits on the list like any
//! other (its consumer holds it until due), a chord's body is claimed once (Celery 5.7), and
//! an ack settles a message by its delivery tag, so a holder frozen past the visibility
//! timeout can still settle the copy another worker restored and took (as with kombu).

use std::sync::Arc;
use std::time::Duration;

use artel_broker_tests::{
    Capabilities, ChordCounting, Fixture, Leases, PriorityOrder, SLOW_POLL, SlowPolling, conformance,
};
use artel_celery::{CeleryRedis, CeleryRedisConfig};
use artel_core::Queues;
use artel_core::{Broker, Chords, Clock, Signature, SystemClock, TaskResult};
use serde_json::json;

fn url() -> String {
    std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// Deletes every key of the test's prefix when the test ends.
struct DropPrefix {
    prefix: String,
}

impl Drop for DropPrefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(url().as_str()) else { return };
        let Ok(mut conn) = client.get_connection() else { return };
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}*", self.prefix)).query(&mut conn).unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

async fn open() -> Option<(CeleryRedis, DropPrefix)> {
    let prefix = format!("artel-test-{}:", uuid::Uuid::new_v4());
    let config = CeleryRedisConfig { prefix: prefix.clone(), poll: Duration::from_millis(10), ..Default::default() };
    match CeleryRedis::connect(&url(), config).await {
        Ok(broker) => Some((broker, DropPrefix { prefix })),
        Err(error) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("Redis is required (ARTEL_REQUIRE_SERVICES=1) but unreachable: {error}")
        }
        Err(error) => {
            eprintln!("skipped: no Redis at {} ({error}); set ARTEL_REDIS_URL or start redis-server", url());
            None
        }
    }
}

/// Other workers on the same prefix, with a short visibility timeout.
fn leases(prefix: &str) -> Leases {
    let (prefix, lease) = (prefix.to_owned(), Duration::from_millis(600));
    Leases {
        lease,
        open: Box::new(move || {
            let config = CeleryRedisConfig {
                prefix: prefix.clone(),
                visibility_timeout: lease,
                poll: Duration::from_millis(10),
                ..Default::default()
            };
            Box::pin(async move {
                let broker = CeleryRedis::connect(&url(), config).await.expect("connect");
                Arc::new(broker) as Arc<dyn Broker>
            })
        }),
    }
}

/// Another connection to the prefix whose consumers would poll once an hour.
fn slow_polling(prefix: &str) -> SlowPolling {
    let prefix = prefix.to_owned();
    SlowPolling {
        open: Box::new(move || {
            let config = CeleryRedisConfig { prefix: prefix.clone(), poll: SLOW_POLL, ..Default::default() };
            Box::pin(async move {
                let broker = CeleryRedis::connect(&url(), config).await.expect("connect");
                broker.backend()
            })
        }),
    }
}

async fn celery_fixture() -> Option<Fixture> {
    let (broker, cleanup) = open().await?;
    Some(Fixture {
        backend: broker.backend(),
        prefix: "q-".to_owned(),
        kept: 0,
        leases: Some(leases(&cleanup.prefix)),
        slow_polling: slow_polling(&cleanup.prefix),
        capabilities: Capabilities {
            priority: PriorityOrder::LowerFirst,
            broker_holds_delayed: false,
            chords: ChordCounting::ClaimOnce,
            stale_acks_refused: false,
            consumers_woken: false,
            fair_groups: false,
            ..Capabilities::NATIVE
        },
        cleanup: Box::new(cleanup),
    })
}

conformance!(match celery_fixture().await {
    Some(fixture) => fixture,
    None => return,
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chord_body_is_claimed_once_with_the_size_from_prepare_chord() {
    let Some((broker, _cleanup)) = open().await else { return };
    let group = uuid::Uuid::new_v4().to_string();
    broker.prepare_chord(&group, 2, Some(Duration::from_secs(60))).await.expect("size");
    let part = |i: u32| TaskResult::success(&format!("{group}-{i}"), json!(i), SystemClock.now());
    let ttl = Some(Duration::from_secs(60));
    assert_eq!(broker.chord_part(&group, 1, None, &part(1), ttl).await.expect("part"), None);
    assert_eq!(broker.chord_part(&group, 1, None, &part(1), ttl).await.expect("again"), None, "counted once");
    let all = broker.chord_part(&group, 0, None, &part(0), ttl).await.expect("part").expect("complete");
    assert_eq!(all.iter().map(|r| r.result.clone()).collect::<Vec<_>>(), vec![json!(0), json!(1)]);
    assert_eq!(broker.chord_part(&group, 0, None, &part(0), ttl).await.expect("late"), None, "claimed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_is_held_by_its_consumer_until_due() {
    let Some((broker, _cleanup)) = open().await else { return };
    let q = "q-delayed".to_owned();
    let now = SystemClock.now();
    let later = Signature::new("later").countdown(Duration::from_millis(400)).to_message(now, "t");
    let sent = std::time::Instant::now();
    broker.publish(&q, &[later, Signature::new("now").to_message(now, "t")]).await.expect("publish");
    let mut consumer = broker.consume(&Queues::one(q.clone()), 4).await.expect("consume");
    let first = consumer.next().await.expect("delivery");
    assert_eq!(first.message().headers.task, "now", "the due message is not held up behind the delayed one");
    first.ack().await.expect("ack");
    let second = consumer.next().await.expect("delivery");
    assert_eq!(second.message().headers.task, "later");
    assert!(sent.elapsed() >= Duration::from_millis(390), "delivered after {:?}", sent.elapsed());
    second.ack().await.expect("ack");
    assert_eq!(broker.len(&q).await.expect("len"), 0);
}

mod hostile {
    //! Whatever a producer pushes onto kombu's lists, one worker's consume runs it or
    //! dead-letters it: never lost, never an error that would stop the worker.

    use artel_broker_tests::hostile::{block_on, consume_until_dead, envelopes};
    use proptest::prelude::*;
    use redis::AsyncCommands;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        #[test]
        fn any_envelope_is_run_or_dead_lettered_never_lost(envelope in envelopes()) {
            block_on(async {
                let Some((broker, cleanup)) = super::open().await else { return };
                let client = redis::Client::open(super::url()).expect("client");
                let mut conn = client.get_multiplexed_async_connection().await.expect("connection");
                let (list, dead_list, unacked) =
                    (format!("{}q", cleanup.prefix), format!("{}_artel.dead", cleanup.prefix), format!("{}unacked", cleanup.prefix));
                let _: i64 = conn.lpush(&list, envelope.as_slice()).await.expect("push");
                let dead = || {
                    let (mut conn, dead_list) = (conn.clone(), dead_list.clone());
                    async move { conn.llen::<_, i64>(&dead_list).await.expect("llen") == 1 }
                };
                consume_until_dead(&broker, "q", dead).await;
                let (waiting, held): (i64, i64) =
                    redis::pipe().llen(&list).hlen(&unacked).query_async(&mut conn).await.expect("counts");
                assert_eq!((waiting, held), (0, 0), "nothing left behind");
            });
        }
    }
}
