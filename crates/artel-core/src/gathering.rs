//! [`Gathering`]: a broker whose small publishes, made by many callers at once, go out
//! together — one `publish` of the wrapped broker per queue for all that queued while the
//! previous call was out (one Redis script, one PostgreSQL statement) instead of one each.
//! A lone publish goes out at once, so a quiet producer waits no longer than before; under
//! load, a call carries what arrived during the last one, so batches grow with the load.
//!
//! Invariants: a publish is answered only after the call carrying it returned, and when
//! that call failed every publish in it gets the error — so wrap only a broker whose
//! `publish` of a slice is all or nothing. A caller's publishes keep their order (each
//! waits for its answer). Publishes already in batches (more than [`SMALL`] messages) go
//! straight through.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::broker::{Broker, BrokerResult, Consumer};
use crate::error::{BrokerError, BrokerErrorKind};
use crate::leased::{Gather, Gathered};
use crate::message::Message;
use crate::queues::Queues;

/// Publishes of at most this many messages are gathered; larger ones are batches already.
pub const SMALL: usize = 8;

/// The most publishes one gathered call carries (with [`SMALL`], at most 1,024 messages).
const MAX_PUBLISHES: usize = 128;

/// Where a publish's outcome goes.
type Reply = oneshot::Sender<BrokerResult<()>>;

/// One caller's publish, waiting for the call that carries it.
struct Publish {
    queue: String,
    messages: Vec<Message>,
    reply: Reply,
}

/// A broker whose small publishes are gathered; see the module docs.
#[derive(Debug)]
pub struct Gathering {
    inner: Arc<dyn Broker>,
    publishes: mpsc::UnboundedSender<Publish>,
}

impl Gathering {
    /// Gathers the small publishes to `inner`, whose `publish` must be all or nothing.
    /// Starts the loop that makes the calls (on the current tokio runtime); it ends when
    /// this is dropped.
    pub fn new(inner: Arc<dyn Broker>) -> Self {
        let (publishes, incoming) = mpsc::unbounded_channel();
        tokio::spawn(run(inner.clone(), incoming));
        Self { inner, publishes }
    }
}

#[async_trait]
impl Broker for Gathering {
    async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()> {
        if messages.is_empty() || messages.len() > SMALL {
            return self.inner.publish(queue, messages).await;
        }
        let (reply, answer) = oneshot::channel();
        let publish = Publish { queue: queue.to_owned(), messages: messages.to_vec(), reply };
        let gone = || BrokerError::new(BrokerErrorKind::Connection, "the broker's publisher has stopped");
        self.publishes.send(publish).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    async fn consume(&self, queues: &Queues, prefetch: usize) -> BrokerResult<Box<dyn Consumer>> {
        self.inner.consume(queues, prefetch).await
    }

    async fn len(&self, queue: &str) -> BrokerResult<u64> {
        self.inner.len(queue).await
    }

    async fn purge(&self, queue: &str) -> BrokerResult<u64> {
        self.inner.purge(queue).await
    }

    fn store_identity(&self) -> Option<usize> {
        self.inner.store_identity()
    }
}

/// Makes the calls: per batch, one per queue, the queues' calls side by side.
async fn run(inner: Arc<dyn Broker>, incoming: mpsc::UnboundedReceiver<Publish>) {
    // Publishes need no key apart, but `Gather` asks for one (see `Publish::reply_key`).
    let mut gather = Gather::new(incoming, MAX_PUBLISHES, |p: &Publish| p.reply_key());
    while let Gathered::Batch(batch) = gather.next(None).await {
        let mut calls = by_queue(batch);
        if calls.len() == 1 {
            // The usual case (a lone publish, or all to one queue): no task to spawn.
            let (queue, messages, replies) = calls.remove(0);
            call(&*inner, &queue, &messages, replies).await;
            continue;
        }
        let mut side_by_side = JoinSet::new();
        for (queue, messages, replies) in calls {
            let inner = inner.clone();
            side_by_side.spawn(async move { call(&*inner, &queue, &messages, replies).await });
        }
        while side_by_side.join_next().await.is_some() {}
    }
}

/// One publish of `messages` to `queue`, its outcome told to every publish it carried.
async fn call(inner: &dyn Broker, queue: &str, messages: &[Message], replies: Vec<Reply>) {
    let outcome = inner.publish(queue, messages).await;
    for reply in replies {
        let _ = reply.send(outcome.as_ref().map(|_| ()).map_err(|e| BrokerError::new(e.kind(), e.to_string())));
    }
}

impl Publish {
    /// The first message's task id: distinct for publishes of different tasks; two sends
    /// of one task id at once only go in consecutive calls instead of one.
    fn reply_key(&self) -> &str {
        self.messages.first().map_or("", |m| m.headers.id.as_str())
    }
}

/// `batch` as one call per queue (its messages in arrival order, and the replies owed),
/// in first-seen order.
fn by_queue(batch: Vec<Publish>) -> Vec<(String, Vec<Message>, Vec<Reply>)> {
    let mut calls: Vec<(String, Vec<Message>, Vec<Reply>)> = Vec::new();
    for Publish { queue, messages, reply } in batch {
        match calls.iter_mut().find(|(q, _, _)| *q == queue) {
            Some((_, carried, replies)) => {
                carried.extend(messages);
                replies.push(reply);
            }
            None => calls.push((queue, messages, vec![reply])),
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;

    use super::Gathering;
    use crate::broker::{Broker, BrokerResult, Consumer};
    use crate::error::{BrokerError, BrokerErrorKind};
    use crate::message::Message;
    use crate::queues::Queues;
    use crate::signature::Signature;
    use crate::time::{Clock, SystemClock};

    /// Records each call's queue and task ids; each call takes a moment, as a round trip
    /// does; fails every call while `failing`.
    #[derive(Debug, Default)]
    struct Recorder {
        calls: Mutex<Vec<(String, Vec<String>)>>,
        failing: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl Broker for Recorder {
        async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()> {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(BrokerError::new(BrokerErrorKind::Connection, "the server went away"));
            }
            let ids = messages.iter().map(|m| m.headers.id.clone()).collect();
            crate::lock(&self.calls).push((queue.to_owned(), ids));
            Ok(())
        }
        async fn consume(&self, _: &Queues, _: usize) -> BrokerResult<Box<dyn Consumer>> {
            unreachable!("publishing only")
        }
        async fn len(&self, _: &str) -> BrokerResult<u64> {
            Ok(0)
        }
        async fn purge(&self, _: &str) -> BrokerResult<u64> {
            Ok(0)
        }
    }

    fn message(queue: &str) -> Message {
        Signature::new("noop").queue(queue).to_message(SystemClock.now(), "test")
    }

    async fn publish_at_once(broker: &Arc<Gathering>, queues: &[&str], each: usize) -> Vec<BrokerResult<()>> {
        let mut sends = tokio::task::JoinSet::new();
        for i in 0..each * queues.len() {
            let (broker, queue) = (broker.clone(), queues[i % queues.len()].to_owned());
            sends.spawn(async move { broker.publish(&queue, &[message(&queue)]).await });
        }
        sends.join_all().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_publishes_at_once_go_out_in_few_calls_each_to_its_queue_and_none_is_lost() {
        let recorder = Arc::new(Recorder::default());
        let broker = Arc::new(Gathering::new(recorder.clone()));
        let outcomes = publish_at_once(&broker, &["a", "b"], 300).await;
        assert!(outcomes.iter().all(Result::is_ok));
        let calls = crate::lock(&recorder.calls).clone();
        let carried: usize = calls.iter().map(|(_, ids)| ids.len()).sum();
        assert_eq!(carried, 600, "every message published once");
        let mut ids: Vec<&String> = calls.iter().flat_map(|(_, ids)| ids).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 600, "no message published twice");
        assert!(calls.len() < 60, "600 publishes took {} calls", calls.len());
        for queue in ["a", "b"] {
            let on_queue: usize = calls.iter().filter(|(q, _)| q == queue).map(|(_, ids)| ids.len()).sum();
            assert_eq!(on_queue, 300, "each message went to its own queue");
        }
    }

    #[tokio::test]
    async fn a_lone_publish_is_one_call_and_a_batch_goes_straight_through() {
        let recorder = Arc::new(Recorder::default());
        let broker = Gathering::new(recorder.clone());
        broker.publish("a", &[message("a")]).await.expect("published");
        let batch: Vec<Message> = (0..super::SMALL + 1).map(|_| message("a")).collect();
        broker.publish("a", &batch).await.expect("published");
        let sizes: Vec<usize> = crate::lock(&recorder.calls).iter().map(|(_, ids)| ids.len()).collect();
        assert_eq!(sizes, [1, super::SMALL + 1]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn when_a_call_fails_every_publish_it_carried_is_told() {
        let recorder = Arc::new(Recorder::default());
        recorder.failing.store(true, std::sync::atomic::Ordering::Relaxed);
        let broker = Arc::new(Gathering::new(recorder.clone()));
        let outcomes = publish_at_once(&broker, &["a"], 50).await;
        for outcome in outcomes {
            let error = outcome.expect_err("the call failed");
            assert_eq!(error.kind(), BrokerErrorKind::Connection);
            assert!(error.to_string().contains("the server went away"), "{error}");
        }
    }
}
