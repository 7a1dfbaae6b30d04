//! [`Inspect`], [`Control`] and [`WorkerRegistry`] on kombu's Redis layout, so `artel
//! queues`, `artel dead` and `artel stats` work on `celery+redis://` too: queues are
//! found from kombu's bindings, waiting counts from the priority lists, held and
//! delayed ones from `unacked`, dead letters from `_artel.dead` (`{queue, reason,
//! envelope}`), worker reports in `_artel.workers`.

use std::collections::BTreeMap;

use artel_core::{
    Broker, BrokerResult, Control, DeadMessage, Inspect, Message, QueueCounts, WorkerRegistry, WorkerReport,
};
use artel_redis::toolkit::{WorkerReports, redis_error, scan};
use async_trait::async_trait;
use redis::AsyncCommands;
use serde_json::Value;

use crate::CeleryRedis;
use crate::keys::SEP;
use artel_core::time::now_ms;

/// A dead letter as `lib/held.lua` writes it, with its raw bytes (to remove it by value).
struct DeadEntry {
    raw: Vec<u8>,
    queue: String,
    reason: String,
    envelope: String,
}

impl CeleryRedis {
    async fn dead_entries(&self) -> BrokerResult<Vec<DeadEntry>> {
        let mut conn = self.shared.conn.clone();
        let raw: Vec<Vec<u8>> = conn
            .lrange(self.shared.names.dead_list(), 0, -1)
            .await
            .map_err(|e| redis_error("listing dead messages", e))?;
        Ok(raw
            .into_iter()
            .map(|raw| {
                let entry: Value = serde_json::from_slice(&raw).unwrap_or_default();
                let text = |key: &str| entry[key].as_str().unwrap_or_default().to_owned();
                let reason = match entry["reason"].as_str() {
                    Some(reason) => reason.to_owned(),
                    None => {
                        format!("an entry artel cannot read: {}", String::from_utf8_lossy(&raw[..raw.len().min(80)]))
                    }
                };
                DeadEntry { queue: text("queue"), reason, envelope: text("envelope"), raw }
            })
            .collect())
    }

    /// Queues named by kombu's bindings (every queue a producer or worker declared).
    async fn queue_names(&self) -> BrokerResult<Vec<String>> {
        let names = &self.shared.names;
        let mut conn = self.shared.conn.clone();
        let mut queues = std::collections::BTreeSet::new();
        for binding in scan(&mut conn, &format!("{}_kombu.binding.*", names.prefix)).await? {
            // Bytes, not strings: one junk member must not hide every queue.
            let members: Vec<Vec<u8>> =
                conn.smembers(&binding).await.map_err(|e| redis_error("reading kombu's bindings", e))?;
            let members = members.iter().filter_map(|m| std::str::from_utf8(m).ok());
            queues.extend(members.filter_map(|m| m.rsplit(SEP).next()).map(str::to_owned));
        }
        Ok(queues.into_iter().collect())
    }

    fn worker_reports(&self) -> WorkerReports {
        WorkerReports { key: format!("{}_artel.workers", self.shared.names.prefix) }
    }
}

#[async_trait]
impl Inspect for CeleryRedis {
    /// Waiting messages of `queue` plus every held message (kombu keeps one `unacked`
    /// hash for all queues, so this over-counts when several queues are busy).
    async fn unfinished(&self, queue: &str, up_to: u64) -> BrokerResult<u64> {
        let waiting = self.len(queue).await?;
        let mut conn = self.shared.conn.clone();
        let held: u64 = redis::cmd("HLEN")
            .arg(self.shared.names.unacked())
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("counting held messages", e))?;
        Ok((waiting + held).min(up_to))
    }

    async fn queue_counts(&self) -> BrokerResult<Vec<QueueCounts>> {
        let mut counts: BTreeMap<String, QueueCounts> = BTreeMap::new();
        for queue in self.queue_names().await? {
            let ready = self.len(&queue).await?;
            counts.insert(queue.clone(), QueueCounts { queue, ready, ..QueueCounts::default() });
        }
        let mut conn = self.shared.conn.clone();
        let held: Vec<Vec<u8>> =
            conn.hvals(self.shared.names.unacked()).await.map_err(|e| redis_error("reading held messages", e))?;
        let now = now_ms();
        for entry in held.iter().filter_map(|held| serde_json::from_slice::<Value>(held).ok()) {
            let queue = entry[2].as_str().unwrap_or_default().to_owned();
            let due = entry[0]["headers"]["eta"].as_str().and_then(|eta| artel_core::time::parse_iso(eta).ok());
            let c = counts.entry(queue.clone()).or_insert_with(|| QueueCounts { queue, ..QueueCounts::default() });
            match due {
                Some(due) if due.timestamp_millis() > now => c.delayed += 1,
                _ => c.leased += 1,
            }
        }
        for dead in self.dead_entries().await? {
            let queue = dead.queue;
            counts.entry(queue.clone()).or_insert_with(|| QueueCounts { queue, ..QueueCounts::default() }).dead += 1;
        }
        Ok(counts.into_values().collect())
    }

    async fn dead_list(&self, queue: Option<&str>, limit: usize) -> BrokerResult<Vec<DeadMessage>> {
        let entries = self.dead_entries().await?;
        Ok(entries
            .into_iter()
            .enumerate()
            .filter(|(_, e)| queue.is_none_or(|q| q == e.queue))
            .take(limit)
            .map(|(n, e)| DeadMessage {
                id: n.to_string(),
                task_id: Message::from_envelope_or_salvage(e.envelope.as_bytes())
                    .map(|m| m.headers.id)
                    .unwrap_or_default(),
                queue: e.queue,
                reason: e.reason,
                died_at_ms: 0,
                deliveries: 0,
            })
            .collect())
    }
}

#[async_trait]
impl Control for CeleryRedis {
    /// Each entry is pushed back as the bytes it came as, then removed (a crash in between
    /// may run it twice, never lose it); its stored FAILURE is forgotten first. An entry
    /// whose message cannot be read stays dead.
    async fn dead_retry(&self, queue: Option<&str>) -> BrokerResult<u64> {
        let (names, mut conn) = (&self.shared.names, self.shared.conn.clone());
        let mut retried = 0;
        for entry in self.dead_entries().await?.into_iter().filter(|e| queue.is_none_or(|q| q == e.queue)) {
            let Ok(message) = Message::from_envelope(entry.envelope.as_bytes()) else { continue };
            let list = names.list(&entry.queue, message.properties.priority);
            let _: () = redis::pipe()
                .del(names.result(&message.headers.id))
                .lpush(&list, entry.envelope.as_bytes())
                .lrem(names.dead_list(), 1, entry.raw.as_slice())
                .query_async(&mut conn)
                .await
                .map_err(|e| redis_error("retrying a dead message", e))?;
            retried += 1;
        }
        Ok(retried)
    }

    async fn dead_purge(&self, queue: Option<&str>) -> BrokerResult<u64> {
        let (names, mut conn) = (&self.shared.names, self.shared.conn.clone());
        let mut purged = 0;
        for entry in self.dead_entries().await?.into_iter().filter(|e| queue.is_none_or(|q| q == e.queue)) {
            let removed: u64 = conn
                .lrem(names.dead_list(), 1, entry.raw.as_slice())
                .await
                .map_err(|e| redis_error("purging a dead message", e))?;
            purged += removed;
        }
        Ok(purged)
    }
}

#[async_trait]
impl WorkerRegistry for CeleryRedis {
    async fn report_worker(&self, name: &str, stats: &Value) -> BrokerResult<bool> {
        self.worker_reports().report(&mut self.shared.conn.clone(), name, stats, now_ms()).await
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
