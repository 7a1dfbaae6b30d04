//! The `memory://` reference broker and backend behave as the traits promise.

use std::time::Duration;

use artel_core::memory::{MemoryBackend, MemoryBroker};
use artel_core::{Broker, BrokerErrorKind, Clock, Message, ResultBackend, Signature, State, SystemClock, TaskResult};
use serde_json::json;

fn message(task: &str) -> Message {
    Signature::new(task).to_message(SystemClock.now(), "test@host")
}

fn queues(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn higher_priority_first_then_publish_order() {
    let broker = MemoryBroker::new();
    let mut batch = Vec::new();
    for (name, priority) in [("a", 0), ("b", 9), ("c", 5), ("d", 9)] {
        batch.push(Signature::new(name).priority(priority).to_message(SystemClock.now(), "t"));
    }
    broker.publish("q", &batch).await.expect("publish");
    let mut consumer = broker.consume(&queues(&["q"]), 1).await.expect("consume");
    let mut order = Vec::new();
    for _ in 0..4 {
        let d = consumer.next().await.expect("delivery");
        order.push(d.message().headers.task.clone());
        d.ack().await.expect("ack");
    }
    assert_eq!(order, ["b", "d", "c", "a"]);
    assert_eq!(broker.len("q").await.expect("len"), 0);
}

#[tokio::test]
async fn earlier_queues_are_served_first() {
    let broker = MemoryBroker::new();
    broker.publish("low", &[message("from-low")]).await.expect("publish");
    broker.publish("high", &[message("from-high")]).await.expect("publish");
    let mut consumer = broker.consume(&queues(&["high", "low"]), 1).await.expect("consume");
    assert_eq!(consumer.next().await.expect("d").message().headers.task, "from-high");
}

#[tokio::test]
async fn undecided_delivery_goes_back_and_rejected_goes_to_dead() {
    let broker = MemoryBroker::new();
    broker.publish("q", &[message("t")]).await.expect("publish");
    let mut consumer = broker.consume(&queues(&["q"]), 1).await.expect("consume");
    let first = consumer.next().await.expect("delivery");
    assert_eq!(broker.len("q").await.expect("len"), 0, "in flight, not ready");
    drop(first);
    assert_eq!(broker.len("q").await.expect("len"), 1, "dropped delivery is put back");
    let again = consumer.next().await.expect("redelivered");
    again.reject("unknown task `t`").await.expect("reject");
    assert_eq!(broker.len("q").await.expect("len"), 0);
    let dead = broker.dead("q");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].1, "unknown task `t`");
}

#[tokio::test]
async fn delayed_messages_wait_for_their_eta() {
    let broker = MemoryBroker::new();
    let delayed = Signature::new("later").countdown(Duration::from_millis(150)).to_message(SystemClock.now(), "t");
    broker.publish("q", &[delayed]).await.expect("publish");
    assert_eq!(broker.scheduled_len("q"), 1);
    assert_eq!(broker.len("q").await.expect("len"), 0);
    let mut consumer = broker.consume(&queues(&["q"]), 1).await.expect("consume");
    let started = std::time::Instant::now();
    let d = consumer.next().await.expect("delivery");
    assert!(started.elapsed() >= Duration::from_millis(120), "delivered after {:?}", started.elapsed());
    assert_eq!(d.message().headers.task, "later");
}

#[tokio::test]
async fn purge_counts_what_it_removed() {
    let broker = MemoryBroker::new();
    broker.publish("q", &[message("a"), message("b")]).await.expect("publish");
    assert_eq!(broker.purge("q").await.expect("purge"), 2);
    assert_eq!(broker.len("q").await.expect("len"), 0);
}

#[tokio::test]
async fn backend_wait_is_woken_by_store_and_times_out_otherwise() {
    let backend = MemoryBackend::new();
    let waiter = {
        let backend = backend.clone();
        tokio::spawn(async move { backend.wait("t1", Duration::from_secs(5)).await })
    };
    tokio::task::yield_now().await;
    let now = SystemClock.now();
    backend.store(&TaskResult::progress("t1", State::Started, json!({})), None).await.expect("store");
    backend.store(&TaskResult::success("t1", json!(5), now), None).await.expect("store");
    let got = waiter.await.expect("join").expect("ready");
    assert_eq!((got.status, got.result), (State::Success, json!(5)));

    let err = backend.wait("never", Duration::from_millis(20)).await.expect_err("times out");
    assert_eq!(err.kind(), BrokerErrorKind::Timeout);
}

#[tokio::test]
async fn a_finished_result_is_never_overwritten() {
    let backend = MemoryBackend::new();
    let now = SystemClock.now();
    assert!(backend.store(&TaskResult::success("t", json!(1), now), None).await.expect("store"));
    let late = TaskResult::progress("t", State::Started, json!({}));
    assert!(!backend.store(&late, None).await.expect("store"), "stale write is refused");
    assert_eq!(backend.get("t").await.expect("get").expect("stored").status, State::Success);
}

#[tokio::test]
async fn results_expire_after_their_ttl() {
    let backend = MemoryBackend::new();
    let now = SystemClock.now();
    backend.store(&TaskResult::success("t", json!(1), now), Some(Duration::from_millis(30))).await.expect("store");
    assert!(backend.get("t").await.expect("get").is_some());
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(backend.get("t").await.expect("get").is_none());
}

#[test]
fn signature_options_become_celery_headers() {
    let now = artel_core::time::parse_iso("2030-01-01T00:00:00+00:00").expect("time");
    let m = Signature::new("app.add")
        .with_args(vec![json!(2), json!(3)])
        .countdown(Duration::from_secs(10))
        .expires_in(Duration::from_secs(60))
        .time_limit(Duration::from_secs(30))
        .soft_time_limit(Duration::from_millis(2500))
        .queue("fast")
        .priority(7)
        .to_message(now, "gen1@host");
    assert_eq!(artel_core::time::to_iso(&m.headers.eta.expect("eta")), "2030-01-01T00:00:10+00:00");
    assert_eq!(artel_core::time::to_iso(&m.headers.expires.expect("expires")), "2030-01-01T00:01:00+00:00");
    assert_eq!(m.properties.expiration.as_deref(), Some("60000"));
    assert_eq!(m.headers.timelimit, (Some(30.0), Some(2.5)));
    assert_eq!((m.queue(), m.properties.priority), ("fast", 7));
    assert_eq!(m.headers.root_id.as_deref(), Some(m.headers.id.as_str()));
    let body = m.decode_body().expect("body");
    assert_eq!(body.args, vec![json!(2), json!(3)]);
    // And it survives the envelope encoding every broker stores.
    assert_eq!(Message::from_envelope(&m.to_envelope()).expect("decodes"), m);
}
