//! [`Inspect`], [`Control`] and [`WorkerRegistry`] on the database: counts, dead
//! letters, worker reports.

use artel_core::{BrokerResult, Control, DeadMessage, Inspect, QueueCounts, WorkerRegistry, WorkerReport};
use async_trait::async_trait;
use serde_json::Value;

use crate::broker::SqliteBroker;
use crate::queries;

#[async_trait]
impl Inspect for SqliteBroker {
    async fn unfinished(&self, queue: &str, up_to: u64) -> BrokerResult<u64> {
        let queue = queue.to_owned();
        self.shared.db.call("counting unfinished messages", move |tx| queries::pending(tx, &queue, up_to)).await
    }

    async fn queue_counts(&self) -> BrokerResult<Vec<QueueCounts>> {
        let now = self.shared.now_ms();
        let (live, dead) = self
            .shared
            .db
            .call("counting queues", move |tx| Ok((queries::count_by_queue(tx, now)?, queries::dead_by_queue(tx)?)))
            .await?;
        Ok(QueueCounts::tally(live, dead))
    }

    async fn dead_list(&self, queue: Option<&str>, limit: usize) -> BrokerResult<Vec<DeadMessage>> {
        let queue = queue.map(str::to_owned);
        let rows = self
            .shared
            .db
            .call("listing dead messages", move |tx| queries::dead_list(tx, queue.as_deref(), limit))
            .await?;
        Ok(rows.into_iter().map(DeadMessage::from_row).collect())
    }
}

#[async_trait]
impl Control for SqliteBroker {
    async fn dead_retry(&self, queue: Option<&str>) -> BrokerResult<u64> {
        let (queue, now) = (queue.map(str::to_owned), self.shared.now_ms());
        let n = self
            .shared
            .db
            .call("retrying dead messages", move |tx| queries::dead_retry(tx, queue.as_deref(), now))
            .await?;
        self.shared.wake_consumers();
        Ok(n as u64)
    }

    async fn dead_purge(&self, queue: Option<&str>) -> BrokerResult<u64> {
        let queue = queue.map(str::to_owned);
        let n =
            self.shared.db.call("purging dead messages", move |tx| queries::dead_purge(tx, queue.as_deref())).await?;
        Ok(n as u64)
    }
}

#[async_trait]
impl WorkerRegistry for SqliteBroker {
    async fn report_worker(&self, name: &str, stats: &Value) -> BrokerResult<bool> {
        let (name, stats, now) = (name.to_owned(), stats.to_string(), self.shared.now_ms());
        self.shared
            .db
            .call("recording a worker heartbeat", move |tx| {
                queries::worker_upsert(tx, &name, now, &stats)?;
                queries::worker_take_stop(tx, &name)
            })
            .await
    }

    async fn request_stop(&self, name: &str) -> BrokerResult<bool> {
        let name = name.to_owned();
        self.shared.db.call("asking a worker to stop", move |tx| queries::worker_request_stop(tx, &name)).await
    }

    async fn worker_gone(&self, name: &str) -> BrokerResult<()> {
        let name = name.to_owned();
        self.shared.db.call("removing a worker", move |tx| queries::worker_delete(tx, &name)).await
    }

    async fn workers(&self) -> BrokerResult<Vec<WorkerReport>> {
        let rows = self.shared.db.call("listing workers", queries::worker_list).await?;
        Ok(rows.into_iter().map(WorkerReport::from_row).collect())
    }
}
