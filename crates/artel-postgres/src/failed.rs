//! [`FailedTasks`] on the database: the `failed` table, written with the ack
//! (`LeaseStore::ack_failed`), read and re-published here.

use artel_core::{BrokerResult, FailedFilter, FailedTask, FailedTasks, Message};
use async_trait::async_trait;

use crate::broker::PostgresBroker;
use crate::shared::pg_error;

#[async_trait]
impl FailedTasks for PostgresBroker {
    async fn failed_list(&self, filter: &FailedFilter) -> BrokerResult<Vec<FailedTask>> {
        let entries: Vec<String> = sqlx::query_scalar(include_str!("../queries/failed/list.sql"))
            .bind(filter.queue.as_deref())
            .bind(filter.task.as_deref())
            .bind(filter.since_ms)
            .bind(i64::try_from(filter.limit).unwrap_or(i64::MAX))
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|e| pg_error("listing failed tasks", e))?;
        entries.iter().map(|entry| FailedTask::decode(entry.as_bytes())).collect()
    }

    /// Takes the failures and publishes their messages again (retries reset, due now),
    /// forgetting their old results, in one transaction.
    async fn failed_retry(&self, task_ids: Option<&[String]>) -> BrokerResult<u64> {
        let retrying = |e| pg_error("retrying failed tasks", e);
        let mut tx = self.shared.pool.begin().await.map_err(retrying)?;
        let taken: Vec<(String, Vec<u8>)> = sqlx::query_as(include_str!("../queries/failed/take.sql"))
            .bind(task_ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(retrying)?;
        let mut published = 0;
        for (queue, envelope) in taken {
            let Ok(mut message) = Message::from_envelope(&envelope) else { continue };
            message.headers.retries = 0;
            message.headers.eta = None;
            sqlx::query(include_str!("../queries/result/forget.sql"))
                .bind(&message.headers.id)
                .execute(&mut *tx)
                .await
                .map_err(retrying)?;
            self.insert(&mut *tx, &queue, std::slice::from_ref(&message), true).await?;
            published += 1;
        }
        tx.commit().await.map_err(retrying)?;
        Ok(published)
    }
}
