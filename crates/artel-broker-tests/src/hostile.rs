//! Hostile input for property tests: whatever bytes end up in a queue, one consume either
//! delivers them or dead-letters them, and never fails the consumer.

use std::time::Duration;

use artel_core::Broker;
use artel_core::Queues;
use proptest::prelude::*;

/// Bytes a queue may hold: anything at all, JSON-ish junk built from the pieces of an
/// envelope (so the decoders get past their first check), and near-valid envelopes with
/// one field wrong.
pub fn envelopes() -> impl Strategy<Value = Vec<u8>> {
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"headers\"",
        "\"body\"",
        "\"properties\"",
        "\"id\"",
        "\"task\"",
        "\"eta\"",
        "\"x\"",
        "\"echo\"",
        "\"\"",
        "null",
        "1e400",
        "NaN",
        "Infinity",
        "-1",
        "\"\\u0000\"",
        "\"W1tdLHt9LHt9XQ==\"",
        "\"body_encoding\"",
        "\"base64\"",
        "\"delivery_tag\"",
        "\"t1\"",
        "\"delivery_info\"",
        "\"routing_key\"",
    ];
    let junk =
        prop::collection::vec(prop::sample::select(pieces.to_vec()), 0..40).prop_map(|p| p.concat().into_bytes());
    let field =
        prop::sample::select(vec!["\"id\"", "\"task\"", "\"eta\"", "\"expires\"", "\"timelimit\"", "\"retries\""]);
    let value =
        prop::sample::select(vec!["null", "1e400", "NaN", "-1", "[]", "{}", "\"2026-13-45\"", "18446744073709551616"]);
    let near_valid = (field, value).prop_map(|(field, value)| {
        format!(
            r#"{{"body":"W1tdLHt9LHt9XQ==","content-encoding":"utf-8","content-type":"application/json","headers":{{"task":"echo","id":"p1",{field}:{value}}},"properties":{{"delivery_tag":"t1","body_encoding":"base64","delivery_info":{{"routing_key":"q"}}}}}}"#
        )
        .into_bytes()
    });
    prop_oneof![any::<Vec<u8>>(), junk, near_valid]
}

/// Consumes `queue` as a worker would until its one message is dead-lettered
/// (`dead_lettered` says so): a delivery is settled by dead-lettering it (a property test
/// has no task to run), and an error from the consumer is a bug, since one message must
/// never fail it. Panics when the message is neither delivered nor dead within 10 s.
pub async fn consume_until_dead<F, Fut>(broker: &dyn Broker, queue: &str, mut dead_lettered: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut consumer = broker.consume(&Queues::one(queue), 4).await.expect("consume");
    let next = tokio::spawn(async move { consumer.next().await.map(|delivery| (delivery, consumer)) });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !next.is_finished() {
        if dead_lettered().await {
            return next.abort();
        }
        assert!(std::time::Instant::now() < deadline, "neither delivered nor dead-lettered within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    match next.await.expect("the consume task") {
        Ok((delivery, _consumer)) => delivery.reject("dead-lettered by the property test").await.expect("reject"),
        Err(error) => panic!("one message failed the consumer: {error}"),
    }
    assert!(dead_lettered().await, "a delivered message, once rejected, is dead");
}

/// Dead letters and messages still waiting or held, over every queue of a broker with
/// the [`Inspect`](artel_core::Inspect) capability: (dead, left).
pub async fn dead_and_left(inspect: &dyn artel_core::Inspect) -> (u64, u64) {
    let counts = inspect.queue_counts().await.expect("counts");
    counts.iter().fold((0, 0), |(dead, left), c| (dead + c.dead, left + c.ready + c.delayed + c.leased))
}

/// Runs one property-test case on a fresh runtime (proptest's cases are synchronous).
pub fn block_on<F: std::future::Future<Output = ()>>(case: F) {
    tokio::runtime::Runtime::new().expect("runtime").block_on(case);
}
