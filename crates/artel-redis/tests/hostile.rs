//! Whatever another program writes into a queue's keys, one worker's consume runs it or
//! dead-letters it: never lost, never an error that would stop the worker.

use std::sync::Arc;

use artel_broker_tests::hostile::{block_on, consume_until_dead, dead_and_left, envelopes};
use artel_core::SystemClock;
use artel_redis::{RedisBroker, RedisConfig};
use proptest::prelude::*;

fn url() -> String {
    std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// Stores `envelope` as a pending message the way `lua/enqueue.lua` lays it out.
async fn insert_raw(conn: &mut redis::aio::MultiplexedConnection, prefix: &str, envelope: &[u8]) {
    let key = |part: &str| format!("{prefix}:{{q}}:{part}");
    let _: () = redis::pipe()
        .hset(key("messages"), "raw-1", envelope)
        .hset(key("priorities"), "raw-1", 0)
        .zadd(key("pending"), "raw-1", 9e13 + 1.0)
        .query_async(conn)
        .await
        .expect("insert");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn any_envelope_is_run_or_dead_lettered_never_lost(envelope in envelopes()) {
        block_on(async {
            let prefix = format!("artel-test-hostile-{}", uuid::Uuid::new_v4());
            let config = RedisConfig { prefix: prefix.clone(), ..RedisConfig::default() };
            let broker = match RedisBroker::connect_with(&url(), config, Arc::new(SystemClock)).await {
                Ok(broker) => broker,
                Err(e) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => panic!("Redis is required: {e}"),
                Err(e) => return eprintln!("skipped: no Redis ({e})"),
            };
            let client = redis::Client::open(url()).expect("client");
            let mut conn = client.get_multiplexed_async_connection().await.expect("connection");
            insert_raw(&mut conn, &prefix, &envelope).await;
            consume_until_dead(&broker, "q", || async { dead_and_left(&broker).await.0 == 1 }).await;
            let outcome = dead_and_left(&broker).await;
            broker.delete_namespace().await.expect("clean up");
            assert_eq!(outcome, (1, 0), "dead, nothing left");
        });
    }
}
