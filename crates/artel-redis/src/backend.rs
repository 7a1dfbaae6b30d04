//! Results: guarded writes with TTL, and waiting that is pushed, not polled.

use std::time::Duration;

use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, ResultBackend, Revocation, TaskResult};
use async_trait::async_trait;
use redis::AsyncCommands;

use crate::broker::{RedisBroker, redis_error};
use crate::keys;

/// Revocations kept in the log; older ones are dropped (workers read it every poll).
const REVOCATIONS_KEPT: u64 = 100_000;
/// Revocations one poll reads at most.
const REVOCATIONS_PER_READ: isize = 10_000;

fn decode<T: serde::de::DeserializeOwned>(owner: &str, json: &[u8]) -> BrokerResult<T> {
    serde_json::from_slice(json).map_err(|e| {
        BrokerError::new(BrokerErrorKind::Corrupt, format!("stored value of {owner} is not valid JSON")).with_source(e)
    })
}

fn encode<T: serde::Serialize>(value: &T, what: &'static str) -> BrokerResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| BrokerError::new(BrokerErrorKind::Other, what).with_source(e))
}

fn ttl_ms(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1))
}

#[async_trait]
impl ResultBackend for RedisBroker {
    async fn store(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<bool> {
        let json = encode(result, "encoding a result")?;
        let mut conn = self.shared.conn.clone();
        let written: i64 = self
            .shared
            .scripts
            .store_result
            .key(keys::result(&self.shared.config.prefix, &result.task_id))
            .arg(json)
            .arg(ttl_ms(ttl))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("storing a result", e))?;
        Ok(written == 1)
    }

    async fn get(&self, task_id: &str) -> BrokerResult<Option<TaskResult>> {
        let mut conn = self.shared.conn.clone();
        let key = keys::result(&self.shared.config.prefix, task_id);
        let json: Option<Vec<u8>> = conn.get(&key).await.map_err(|e| redis_error("reading a result", e))?;
        json.map(|j| decode(&format!("task {task_id}"), &j)).transpose()
    }

    async fn chord_part(
        &self,
        group_id: &str,
        index: u32,
        size: Option<u32>,
        result: &TaskResult,
        ttl: Option<Duration>,
    ) -> BrokerResult<Option<Vec<TaskResult>>> {
        let size = size.ok_or_else(|| artel_core::broker::unknown_chord_size(group_id))?;
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

    async fn revoke(&self, revocation: &Revocation) -> BrokerResult<()> {
        let (log, seq) = keys::revocations(&self.shared.config.prefix);
        let mut conn = self.shared.conn.clone();
        let _: u64 = self
            .shared
            .scripts
            .revoke
            .key(log)
            .key(seq)
            .arg(encode(revocation, "encoding a revocation")?)
            .arg(REVOCATIONS_KEPT)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("recording a revocation", e))?;
        Ok(())
    }

    async fn revocations(&self, cursor: u64) -> BrokerResult<(Vec<Revocation>, u64)> {
        let (log, _) = keys::revocations(&self.shared.config.prefix);
        let mut conn = self.shared.conn.clone();
        let rows: Vec<(Vec<u8>, u64)> = conn
            .zrangebyscore_limit_withscores(&log, format!("({cursor}"), "+inf", 0, REVOCATIONS_PER_READ)
            .await
            .map_err(|e| redis_error("reading revocations", e))?;
        let next = rows.last().map_or(cursor, |(_, seq)| *seq);
        let now = chrono::Utc::now();
        let mut revocations = Vec::with_capacity(rows.len());
        for (json, _) in rows {
            let revocation: Revocation = decode("the revocation log", &json)?;
            if revocation.expires_at > now {
                revocations.push(revocation);
            }
        }
        Ok((revocations, next))
    }

    async fn wait(&self, task_id: &str, timeout: Duration) -> BrokerResult<TaskResult> {
        let key = keys::result(&self.shared.config.prefix, task_id);
        // Subscribe first, then read: a result stored in between is seen by the read,
        // one stored after is announced on the channel.
        let mut pubsub =
            self.shared.client.get_async_pubsub().await.map_err(|e| redis_error("opening a result subscription", e))?;
        pubsub.subscribe(&key).await.map_err(|e| redis_error("subscribing to a result", e))?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut messages = pubsub.on_message();
        loop {
            if let Some(result) = self.get(task_id).await?.filter(|r| r.status.is_ready()) {
                return Ok(result);
            }
            let next = tokio_stream_next(&mut messages);
            if tokio::time::timeout_at(deadline, next).await.is_err() {
                return Err(BrokerError::new(
                    BrokerErrorKind::Timeout,
                    format!("task {task_id} was not ready within {timeout:?}"),
                ));
            }
        }
    }
}

/// Waits for the next pub/sub message without a stream-utilities dependency.
async fn tokio_stream_next<S: futures_core::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}
