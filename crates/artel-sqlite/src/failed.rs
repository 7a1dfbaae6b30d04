//! [`FailedTasks`] on the database: the `failed` table, written with the ack
//! (`SqliteAcker::ack_failed`), read and re-published here.

use artel_core::{BrokerResult, FailedFilter, FailedTask, FailedTasks, Message};
use async_trait::async_trait;

use crate::broker::SqliteBroker;
use crate::queries::{self, NewMessage};

#[async_trait]
impl FailedTasks for SqliteBroker {
    async fn failed_list(&self, filter: &FailedFilter) -> BrokerResult<Vec<FailedTask>> {
        let f = filter.clone();
        let entries = self
            .shared
            .db
            .call("listing failed tasks", move |tx| {
                queries::failed_list(tx, f.queue.as_deref(), f.task.as_deref(), f.since_ms, f.limit)
            })
            .await?;
        entries.iter().map(|entry| FailedTask::decode(entry.as_bytes())).collect()
    }

    async fn failed_retry(&self, task_ids: Option<&[String]>) -> BrokerResult<u64> {
        let ids = task_ids.map(|ids| serde_json::Value::from(ids.to_vec()).to_string());
        let now = self.shared.now_ms();
        let published = self
            .shared
            .db
            .call("retrying failed tasks", move |tx| {
                let mut published = 0;
                for (_, queue, envelope) in queries::failed_take(tx, ids.as_deref())? {
                    let Ok(mut message) = Message::from_envelope(&envelope) else { continue };
                    message.headers.retries = 0;
                    message.headers.eta = None;
                    let envelope = message.to_envelope();
                    let row = NewMessage {
                        queue: &queue,
                        priority: message.properties.priority.min(9),
                        visible_at: now,
                        task_id: &message.headers.id,
                        envelope: &envelope,
                        group: message.fair_group().unwrap_or_default(),
                    };
                    queries::insert_message(tx, &row)?;
                    queries::forget_result(tx, &message.headers.id)?;
                    published += 1;
                }
                Ok(published)
            })
            .await?;
        self.shared.wake_consumers();
        Ok(published)
    }
}
