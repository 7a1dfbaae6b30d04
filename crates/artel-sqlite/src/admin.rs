//! [`Inspect`], [`Control`], [`WorkerRegistry`] and [`ControlBoard`] on the database:
//! counts, dead letters, worker reports, remote-control requests and replies.

use artel_core::worker::remote::{ControlBoard, KEPT_MS, row_cursor};
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

#[async_trait]
impl ControlBoard for SqliteBroker {
    async fn post_request(&self, body: &[u8]) -> BrokerResult<()> {
        let (body, now) = (body.to_vec(), self.shared.now_ms());
        self.shared
            .db
            .call("posting a remote-control request", move |tx| {
                queries::control_post_request(tx, &body, now, now - KEPT_MS)
            })
            .await
    }

    async fn requests_after(&self, cursor: Option<&str>) -> BrokerResult<(String, Vec<Vec<u8>>)> {
        let cursor = row_cursor(cursor)?;
        let (next, requests) = self
            .shared
            .db
            .call("reading remote-control requests", move |tx| queries::control_requests_after(tx, cursor))
            .await?;
        Ok((next.to_string(), requests))
    }

    async fn post_reply(&self, ticket: &str, body: &[u8]) -> BrokerResult<()> {
        let (ticket, body, now) = (ticket.to_owned(), body.to_vec(), self.shared.now_ms());
        self.shared
            .db
            .call("posting a remote-control reply", move |tx| queries::control_post_reply(tx, &ticket, &body, now))
            .await
    }

    async fn replies(&self, ticket: &str) -> BrokerResult<Vec<Vec<u8>>> {
        let ticket = ticket.to_owned();
        self.shared.db.call("reading remote-control replies", move |tx| queries::control_replies(tx, &ticket)).await
    }
}
