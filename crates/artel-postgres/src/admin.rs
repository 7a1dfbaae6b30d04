//! [`Inspect`], [`Control`] and [`WorkerRegistry`] on the database: counts, dead
//! letters, worker reports.

use artel_core::{BrokerResult, Control, DeadMessage, Inspect, QueueCounts, WorkerRegistry, WorkerReport};
use async_trait::async_trait;
use serde_json::Value;

use crate::broker::PostgresBroker;
use crate::shared::pg_error;

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl Inspect for PostgresBroker {
    async fn unfinished(&self, queue: &str, up_to: u64) -> BrokerResult<u64> {
        let left: i64 = sqlx::query_scalar(include_str!("../queries/message/pending.sql"))
            .bind(queue)
            .bind(i64::try_from(up_to).unwrap_or(i64::MAX))
            .fetch_one(&self.shared.pool)
            .await
            .map_err(|e| pg_error("counting unfinished messages", e))?;
        Ok(count(left))
    }

    async fn queue_counts(&self) -> BrokerResult<Vec<QueueCounts>> {
        let counting = |e| pg_error("counting queues", e);
        let live: Vec<(String, i64, i64, i64)> = sqlx::query_as(include_str!("../queries/message/count_by_queue.sql"))
            .bind(self.shared.now_ms())
            .fetch_all(&self.shared.pool)
            .await
            .map_err(counting)?;
        let dead: Vec<(String, i64)> = sqlx::query_as(include_str!("../queries/dead/count_by_queue.sql"))
            .fetch_all(&self.shared.pool)
            .await
            .map_err(counting)?;
        let live = live.into_iter().map(|(queue, r, d, l)| (queue, count(r), count(d), count(l))).collect();
        Ok(QueueCounts::tally(live, dead.into_iter().map(|(queue, n)| (queue, count(n))).collect()))
    }

    async fn dead_list(&self, queue: Option<&str>, limit: usize) -> BrokerResult<Vec<DeadMessage>> {
        let rows: Vec<(i64, String, String, String, i64, i32)> =
            sqlx::query_as(include_str!("../queries/dead/list.sql"))
                .bind(queue)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.shared.pool)
                .await
                .map_err(|e| pg_error("listing dead messages", e))?;
        Ok(rows
            .into_iter()
            .map(|(id, queue, task_id, reason, died_at, deliveries)| {
                DeadMessage::from_row((id, queue, task_id, reason, died_at, u32::try_from(deliveries).unwrap_or(0)))
            })
            .collect())
    }
}

#[async_trait]
impl Control for PostgresBroker {
    async fn dead_retry(&self, queue: Option<&str>) -> BrokerResult<u64> {
        let retrying = |e| pg_error("retrying dead messages", e);
        let mut tx = self.shared.pool.begin().await.map_err(retrying)?;
        sqlx::query(include_str!("../queries/result/forget_dead.sql"))
            .bind(queue)
            .execute(&mut *tx)
            .await
            .map_err(retrying)?;
        let moved = sqlx::query(include_str!("../queries/dead/retry.sql"))
            .bind(queue)
            .bind(self.shared.now_ms())
            .execute(&mut *tx)
            .await
            .map_err(retrying)?
            .rows_affected();
        sqlx::query(include_str!("../queries/notify.sql"))
            .bind(&self.shared.published_channel)
            .bind(queue.unwrap_or(""))
            .execute(&mut *tx)
            .await
            .map_err(retrying)?;
        tx.commit().await.map_err(retrying)?;
        Ok(moved)
    }

    async fn dead_purge(&self, queue: Option<&str>) -> BrokerResult<u64> {
        let done = sqlx::query(include_str!("../queries/dead/purge.sql"))
            .bind(queue)
            .execute(&self.shared.pool)
            .await
            .map_err(|e| pg_error("purging dead messages", e))?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl WorkerRegistry for PostgresBroker {
    async fn report_worker(&self, name: &str, stats: &Value) -> BrokerResult<bool> {
        let stop: Option<bool> = sqlx::query_scalar(include_str!("../queries/worker/upsert.sql"))
            .bind(name)
            .bind(self.shared.now_ms())
            .bind(stats.to_string())
            .fetch_one(&self.shared.pool)
            .await
            .map_err(|e| pg_error("recording a worker heartbeat", e))?;
        Ok(stop.unwrap_or(false))
    }

    async fn request_stop(&self, name: &str) -> BrokerResult<bool> {
        let done = sqlx::query(include_str!("../queries/worker/request_stop.sql"))
            .bind(name)
            .execute(&self.shared.pool)
            .await
            .map_err(|e| pg_error("asking a worker to stop", e))?;
        Ok(done.rows_affected() == 1)
    }

    async fn worker_gone(&self, name: &str) -> BrokerResult<()> {
        sqlx::query(include_str!("../queries/worker/delete.sql"))
            .bind(name)
            .execute(&self.shared.pool)
            .await
            .map_err(|e| pg_error("removing a worker", e))?;
        Ok(())
    }

    async fn workers(&self) -> BrokerResult<Vec<WorkerReport>> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(include_str!("../queries/worker/list.sql"))
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|e| pg_error("listing workers", e))?;
        Ok(rows.into_iter().map(WorkerReport::from_row).collect())
    }
}
