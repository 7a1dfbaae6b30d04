//! [`FailedTasks`] on Redis: per queue, a ZSET of failed task ids by time and two hashes
//! (failure JSON, envelope), written with the ack by `lua/fail.lua`.

use artel_core::{BrokerResult, FailedFilter, FailedTask, FailedTasks, Message};
use async_trait::async_trait;
use redis::AsyncCommands;

use crate::broker::RedisBroker;
use crate::toolkit::redis_error;

#[async_trait]
impl FailedTasks for RedisBroker {
    async fn failed_list(&self, filter: &FailedFilter) -> BrokerResult<Vec<FailedTask>> {
        let mut listed = Vec::new();
        for queue in self.chosen(filter.queue.as_deref()).await? {
            let entries = self.shared.keys(&queue).failed_entries.clone();
            let mut conn = self.shared.conn.clone();
            let raw: Vec<String> = conn.hvals(&entries).await.map_err(|e| redis_error("listing failed tasks", e))?;
            // A record artel cannot read is skipped, not fatal: it is someone else's junk.
            let failures = raw.iter().filter_map(|json| serde_json::from_str::<FailedTask>(json).ok());
            listed.extend(failures.filter(|f| filter.admits(f)));
        }
        listed.sort_by_key(|f| std::cmp::Reverse(f.failed_at_ms));
        listed.truncate(filter.limit);
        Ok(listed)
    }

    /// Each failure is published again, then removed: a crash in between leaves it in
    /// both places (it may run twice), never in neither.
    async fn failed_retry(&self, task_ids: Option<&[String]>) -> BrokerResult<u64> {
        let mut published = 0;
        for queue in self.chosen(None).await? {
            let keys = self.shared.keys(&queue);
            let mut conn = self.shared.conn.clone();
            let ids: Vec<String> = match task_ids {
                Some(ids) => ids.to_vec(),
                None => conn.zrange(&keys.failed, 0, -1).await.map_err(|e| redis_error("listing failed tasks", e))?,
            };
            for id in ids {
                let envelope: Option<Vec<u8>> = conn
                    .hget(&keys.failed_envelopes, &id)
                    .await
                    .map_err(|e| redis_error("reading a failed task", e))?;
                let Some(envelope) = envelope else { continue };
                if let Ok(mut message) = Message::from_envelope(&envelope) {
                    message.headers.retries = 0;
                    message.headers.eta = None;
                    self.publish_again(&queue, &message).await?;
                    published += 1;
                }
                let _: () = redis::pipe()
                    .zrem(&keys.failed, &id)
                    .hdel(&keys.failed_entries, &id)
                    .hdel(&keys.failed_envelopes, &id)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| redis_error("removing a failed task", e))?;
            }
        }
        Ok(published)
    }
}
