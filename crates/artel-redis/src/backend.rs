//! Results: guarded writes with TTL, and waiting that is pushed, not polled.

use std::time::Duration;

use artel_core::{
    BrokerError, BrokerErrorKind, BrokerResult, Chords, ResultBackend, ResultFeed, Revocation, Revocations, TaskResult,
};
use async_trait::async_trait;
use redis::AsyncCommands;

use crate::broker::RedisBroker;
use crate::feed::PublishedFeed;
use crate::keys;
use crate::toolkit::redis_error;
use crate::toolkit::{RevocationLog, get_many, store_result, ttl_ms, wait_published};

fn decode<T: serde::de::DeserializeOwned>(owner: &str, json: &[u8]) -> BrokerResult<T> {
    serde_json::from_slice(json).map_err(|e| {
        BrokerError::new(BrokerErrorKind::Corrupt, format!("stored value of {owner} is not valid JSON")).with_source(e)
    })
}

fn encode<T: serde::Serialize>(value: &T, what: &'static str) -> BrokerResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| BrokerError::new(BrokerErrorKind::Other, what).with_source(e))
}

#[async_trait]
impl ResultBackend for RedisBroker {
    fn store_identity(&self) -> Option<usize> {
        Some(std::sync::Arc::as_ptr(&self.shared) as usize)
    }

    async fn store(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<bool> {
        let key = keys::result(&self.shared.config.prefix, &result.task_id);
        let mut conn = self.shared.conn.clone();
        let written = store_result(&mut conn, &key, result, ttl).await?;
        match conn.is_cluster() {
            // The ack goes to another shard after this: a result a failover could still
            // lose must fail the store (the task runs again), not be followed by the ack.
            true => self.shared.replicated(&mut conn, &key, "result").await?,
            false => self.shared.completion_replicated(&mut conn, &key).await,
        }
        Ok(written)
    }

    async fn get(&self, task_id: &str) -> BrokerResult<Option<TaskResult>> {
        let mut conn = self.shared.conn.clone();
        let key = keys::result(&self.shared.config.prefix, task_id);
        let json: Option<Vec<u8>> = conn.get(&key).await.map_err(|e| redis_error("reading a result", e))?;
        json.map(|j| decode(&format!("task {task_id}"), &j)).transpose()
    }

    async fn wait(&self, task_id: &str, timeout: Duration) -> BrokerResult<TaskResult> {
        let key = keys::result(&self.shared.config.prefix, task_id);
        wait_published(self.shared.servers.subscribers(), &key, task_id, timeout, || self.get(task_id)).await
    }

    async fn get_many(&self, task_ids: &[String]) -> BrokerResult<Vec<Option<TaskResult>>> {
        let prefix = &self.shared.config.prefix;
        let keys: Vec<String> = task_ids.iter().map(|id| keys::result(prefix, id)).collect();
        get_many(&mut self.shared.conn.clone(), &keys, task_ids).await
    }

    async fn feed(&self) -> BrokerResult<Box<dyn ResultFeed>> {
        let prefix = self.shared.config.prefix.clone();
        Ok(Box::new(PublishedFeed::new(self.shared.servers.subscribers().to_vec(), move |id| {
            keys::result(&prefix, id)
        })))
    }
}

#[async_trait]
impl Chords for RedisBroker {
    async fn chord_part(
        &self,
        group_id: &str,
        index: u32,
        size: Option<u32>,
        result: &TaskResult,
        ttl: Option<Duration>,
    ) -> BrokerResult<Option<Vec<TaskResult>>> {
        let size = size.ok_or_else(|| artel_core::results::unknown_chord_size(group_id))?;
        let mut conn = self.shared.conn.clone();
        let parts: Option<Vec<(u32, Vec<u8>)>> = self
            .shared
            .scripts
            .chord_part
            .key(keys::chord(&self.shared.config.prefix, group_id))
            .arg(index)
            .arg(encode(result, "encoding a chord member's result")?)
            .arg(size)
            .arg(ttl_ms(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("recording a chord member", e))?;
        let Some(mut parts) = parts else { return Ok(None) };
        parts.sort_unstable_by_key(|(index, _)| *index);
        let owner = format!("chord {group_id}");
        parts.iter().map(|(_, json)| decode(&owner, json)).collect::<BrokerResult<_>>().map(Some)
    }
}

#[async_trait]
impl Revocations for RedisBroker {
    async fn revoke(&self, revocation: &Revocation) -> BrokerResult<()> {
        self.revocation_log().record(&mut self.shared.conn.clone(), revocation).await
    }

    async fn revocations(&self, cursor: u64) -> BrokerResult<(Vec<Revocation>, u64)> {
        self.revocation_log().read(&mut self.shared.conn.clone(), cursor).await
    }
}

impl RedisBroker {
    fn revocation_log(&self) -> RevocationLog {
        let (log, seq) = keys::revocations(&self.shared.config.prefix);
        RevocationLog { log, seq }
    }
}
