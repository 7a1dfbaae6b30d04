//! Conformance for fair scheduling: a queue serves the groups (tenants) of its messages
//! round-robin, so one group's backlog does not hold up another's few messages.

use std::time::Duration;

use artel_core::{Clock, Message, Queues, Signature, SystemClock};

use crate::{Fixture, skip};

fn grouped(queue: &str, group: Option<&str>, count: usize) -> Vec<Message> {
    let name = group.unwrap_or("none");
    (0..count)
        .map(|n| {
            let signature = Signature::new(format!("{name}.{n}")).queue(queue);
            let signature = match group {
                Some(group) => signature.group_key(group),
                None => signature,
            };
            signature.to_message(SystemClock.now(), "conformance@test")
        })
        .collect()
}

/// Five messages of group b and one without a group, published after 200 of group a,
/// are all delivered within the first 20 deliveries; each group's own order is kept.
pub async fn groups_of_a_queue_are_served_round_robin(f: &Fixture) {
    if !f.capabilities.fair_groups {
        return skip(f, "it serves a queue in publish order, without groups");
    }
    let q = f.queue("fair");
    let broker = f.broker();
    broker.publish(&q, &grouped(&q, Some("a"), 200)).await.expect("publish a");
    broker.publish(&q, &grouped(&q, Some("b"), 5)).await.expect("publish b");
    broker.publish(&q, &grouped(&q, None, 1)).await.expect("publish one without a group");
    let mut consumer = broker.consume(&Queues::one(q.clone()), 4).await.expect("consume");
    let mut seen: Vec<String> = Vec::new();
    let waiting = |seen: &[String]| seen.iter().filter(|task| !task.starts_with("a.")).count() < 6;
    while waiting(&seen) {
        assert!(seen.len() < 20, "b's 5 and the ungrouped one within 20 deliveries: {seen:?}");
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("a delivery within 10 s")
            .expect("consume");
        seen.push(delivery.message().headers.task.clone());
        delivery.ack().await.expect("ack");
    }
    for group in ["a.", "b."] {
        let order: Vec<usize> =
            seen.iter().filter_map(|task| task.strip_prefix(group)).filter_map(|n| n.parse().ok()).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{group} in its own order: {seen:?}");
    }
    drop(consumer);
    broker.purge(&q).await.expect("purge");
}
