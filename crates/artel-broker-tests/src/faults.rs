//! A broker and result backend that fail on demand, for tests of what the runtime does
//! when publishing or storing fails: the message goes back to the queue and runs again,
//! nothing is lost. Each wraps a real one and fails its next `n` calls of one kind.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use artel_core::Queues;
use artel_core::{
    Backend, Broker, BrokerError, BrokerErrorKind, BrokerResult, Consumer, Message, ResultBackend, TaskResult,
};
use async_trait::async_trait;

/// How many of the next calls of each kind fail.
#[derive(Debug, Default)]
pub struct Faults {
    stores: AtomicU32,
    publishes: AtomicU32,
}

impl Faults {
    /// The next `n` result stores fail.
    pub fn fail_stores(&self, n: u32) {
        self.stores.store(n, Ordering::SeqCst);
    }

    /// The next `n` publishes fail.
    pub fn fail_publishes(&self, n: u32) {
        self.publishes.store(n, Ordering::SeqCst);
    }

    /// Takes one failure of `left`, if any remain: the call it is for fails.
    fn take(left: &AtomicU32, what: &str) -> BrokerResult<()> {
        match left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) {
            Ok(_) => Err(BrokerError::new(BrokerErrorKind::Connection, format!("{what}: injected fault"))),
            Err(_) => Ok(()),
        }
    }
}

/// A broker whose publishes fail on demand.
#[derive(Debug)]
pub struct FaultyBroker {
    /// The broker that does the work.
    pub inner: Arc<dyn Broker>,
    /// The failures to come.
    pub faults: Arc<Faults>,
}

#[async_trait]
impl Broker for FaultyBroker {
    async fn publish(&self, queue: &str, messages: &[Message]) -> BrokerResult<()> {
        Faults::take(&self.faults.publishes, "publishing")?;
        self.inner.publish(queue, messages).await
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
}

/// A result backend whose stores fail on demand.
#[derive(Debug)]
pub struct FaultyBackend {
    /// The backend that does the work.
    pub inner: Arc<dyn ResultBackend>,
    /// The failures to come.
    pub faults: Arc<Faults>,
}

#[async_trait]
impl ResultBackend for FaultyBackend {
    async fn store(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<bool> {
        Faults::take(&self.faults.stores, "storing a result")?;
        self.inner.store(result, ttl).await
    }

    async fn get(&self, task_id: &str) -> BrokerResult<Option<TaskResult>> {
        self.inner.get(task_id).await
    }

    async fn wait(&self, task_id: &str, timeout: Duration) -> BrokerResult<TaskResult> {
        self.inner.wait(task_id, timeout).await
    }

    async fn get_many(&self, task_ids: &[String]) -> BrokerResult<Vec<Option<TaskResult>>> {
        self.inner.get_many(task_ids).await
    }

    async fn feed(&self) -> BrokerResult<Box<dyn artel_core::ResultFeed>> {
        self.inner.feed().await
    }

    async fn save_group(&self, group_id: &str, task_ids: &[String], ttl: Option<Duration>) -> BrokerResult<()> {
        self.inner.save_group(group_id, task_ids, ttl).await
    }

    async fn restore_group(&self, group_id: &str) -> BrokerResult<Option<Vec<String>>> {
        self.inner.restore_group(group_id).await
    }
}

/// `backend` with its publishes and result stores failing as `faults` says.
pub fn faulty(backend: &Backend, faults: Arc<Faults>) -> Backend {
    let broker = FaultyBroker { inner: backend.broker().clone(), faults: faults.clone() };
    let results = FaultyBackend { inner: backend.results().clone(), faults };
    backend.clone().with_broker(Arc::new(broker)).with_results(Arc::new(results))
}
