//! [`Inspect`], [`Control`] and [`WorkerRegistry`] on Redis: queue counts from each
//! queue's sets, dead letters from its dead list, worker reports in one hash.

use std::collections::BTreeSet;

use artel_core::{
    Broker, BrokerResult, Control, DeadMessage, Inspect, Message, QueueCounts, WorkerRegistry, WorkerReport,
};
use async_trait::async_trait;
use redis::AsyncCommands;
use serde_json::Value;

use crate::broker::RedisBroker;
use crate::toolkit::redis_error;

/// A dead entry as `bury.lua` writes it.
#[derive(serde::Deserialize)]
struct DeadEntry {
    id: String,
    reason: String,
    died_at_ms: i64,
    #[serde(default)]
    envelope: String,
}

impl RedisBroker {
    /// Queues ever published to or consumed from (the registry, [`crate::keys::queues`]).
    async fn queue_names(&self) -> BrokerResult<BTreeSet<String>> {
        let registry = crate::keys::queues(&self.shared.config.prefix);
        self.shared.conn.clone().smembers(registry).await.map_err(|e| redis_error("listing queues", e))
    }

    /// The dead list's entries, each with its raw bytes (to remove it by value). An entry
    /// artel did not write is listed with what it looks like, not dropped or fatal.
    async fn dead_entries(&self, queue: &str) -> BrokerResult<Vec<(Vec<u8>, DeadEntry)>> {
        let dead = self.shared.keys(queue).dead.clone();
        let mut conn = self.shared.conn.clone();
        let raw: Vec<Vec<u8>> = conn.lrange(&dead, 0, -1).await.map_err(|e| redis_error("listing dead messages", e))?;
        Ok(raw
            .into_iter()
            .map(|bytes| {
                let entry = serde_json::from_slice(&bytes).unwrap_or_else(|_| DeadEntry {
                    id: "?".to_owned(),
                    reason: format!(
                        "an entry artel cannot read ({} bytes): {}",
                        bytes.len(),
                        String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
                    ),
                    died_at_ms: 0,
                    envelope: String::new(),
                });
                (bytes, entry)
            })
            .collect())
    }

    pub(crate) async fn chosen(&self, queue: Option<&str>) -> BrokerResult<Vec<String>> {
        Ok(match queue {
            Some(queue) => vec![queue.to_owned()],
            None => self.queue_names().await?.into_iter().collect(),
        })
    }

    /// Publishes a dead or failed message again, first forgetting its stored outcome (the
    /// rejection's or failure's FAILURE would hide the new run's): PENDING until it ends.
    pub(crate) async fn publish_again(&self, queue: &str, message: &Message) -> BrokerResult<()> {
        let result = crate::keys::result(&self.shared.config.prefix, &message.headers.id);
        let mut conn = self.shared.conn.clone();
        let _: i64 = conn.del(&result).await.map_err(|e| redis_error("forgetting a result", e))?;
        self.publish(queue, std::slice::from_ref(message)).await
    }

    fn worker_reports(&self) -> crate::toolkit::WorkerReports {
        crate::toolkit::WorkerReports { key: format!("{}:workers", self.shared.config.prefix) }
    }
}

#[async_trait]
impl Inspect for RedisBroker {
    async fn unfinished(&self, queue: &str, up_to: u64) -> BrokerResult<u64> {
        let keys = self.shared.keys(queue);
        let mut conn = self.shared.conn.clone();
        let (pending, scheduled, leased): (u64, u64, u64) = redis::pipe()
            .zcard(&keys.pending)
            .zcard(&keys.scheduled)
            .zcard(&keys.leases)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("counting unfinished messages", e))?;
        Ok((pending + scheduled + leased).min(up_to))
    }

    async fn queue_counts(&self) -> BrokerResult<Vec<QueueCounts>> {
        let now = self.shared.now_ms();
        let mut counts = Vec::new();
        for queue in self.queue_names().await? {
            let keys = self.shared.keys(&queue);
            let mut conn = self.shared.conn.clone();
            let (pending, due, delayed, leased, dead): (u64, u64, u64, u64, u64) = redis::pipe()
                .zcard(&keys.pending)
                .zcount(&keys.scheduled, "-inf", now)
                .zcount(&keys.scheduled, format!("({now}"), "+inf")
                .zcard(&keys.leases)
                .llen(&keys.dead)
                .query_async(&mut conn)
                .await
                .map_err(|e| redis_error("counting a queue", e))?;
            counts.push(QueueCounts { queue, ready: pending + due, delayed, leased, dead });
        }
        Ok(counts)
    }

    async fn dead_list(&self, queue: Option<&str>, limit: usize) -> BrokerResult<Vec<DeadMessage>> {
        let mut listed = Vec::new();
        for queue in self.chosen(queue).await? {
            for (_, entry) in self.dead_entries(&queue).await? {
                let task_id =
                    Message::from_envelope(entry.envelope.as_bytes()).map(|m| m.headers.id).unwrap_or_default();
                listed.push(DeadMessage {
                    id: entry.id,
                    queue: queue.clone(),
                    task_id,
                    reason: entry.reason,
                    died_at_ms: entry.died_at_ms,
                    deliveries: 0,
                });
            }
        }
        listed.sort_by_key(|d| d.died_at_ms);
        listed.truncate(limit);
        Ok(listed)
    }
}

#[async_trait]
impl Control for RedisBroker {
    /// Each entry is published again, then removed: a crash in between leaves it in
    /// both places (it may run twice), never in neither. An entry whose message cannot
    /// be read stays dead (`dead purge` removes it), so nothing vanishes.
    async fn dead_retry(&self, queue: Option<&str>) -> BrokerResult<u64> {
        let mut retried = 0;
        for queue in self.chosen(queue).await? {
            let dead = self.shared.keys(&queue).dead.clone();
            for (raw, entry) in self.dead_entries(&queue).await? {
                let mut conn = self.shared.conn.clone();
                let Ok(message) = Message::from_envelope(entry.envelope.as_bytes()) else { continue };
                self.publish_again(&queue, &message).await?;
                retried += 1;
                let _: i64 = conn.lrem(&dead, 1, raw).await.map_err(|e| redis_error("removing a dead message", e))?;
            }
        }
        Ok(retried)
    }

    async fn dead_purge(&self, queue: Option<&str>) -> BrokerResult<u64> {
        let mut purged = 0;
        for queue in self.chosen(queue).await? {
            let dead = self.shared.keys(&queue).dead.clone();
            let mut conn = self.shared.conn.clone();
            let (n, _): (u64, i64) = redis::pipe()
                .llen(&dead)
                .del(&dead)
                .query_async(&mut conn)
                .await
                .map_err(|e| redis_error("purging dead messages", e))?;
            purged += n;
        }
        Ok(purged)
    }
}

#[async_trait]
impl WorkerRegistry for RedisBroker {
    async fn report_worker(&self, name: &str, stats: &Value) -> BrokerResult<bool> {
        self.worker_reports().report(&mut self.shared.conn.clone(), name, stats, self.shared.now_ms()).await
    }

    async fn request_stop(&self, name: &str) -> BrokerResult<bool> {
        self.worker_reports().request_stop(&mut self.shared.conn.clone(), name).await
    }

    async fn worker_gone(&self, name: &str) -> BrokerResult<()> {
        self.worker_reports().gone(&mut self.shared.conn.clone(), name).await
    }

    async fn workers(&self) -> BrokerResult<Vec<WorkerReport>> {
        self.worker_reports().list(&mut self.shared.conn.clone()).await
    }
}
