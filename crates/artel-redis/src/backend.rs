//! Results: guarded writes with TTL, and waiting that is pushed, not polled.

use std::time::Duration;

use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, ResultBackend, TaskResult};
use async_trait::async_trait;
use redis::AsyncCommands;

use crate::broker::{RedisBroker, redis_error};
use crate::keys;

fn decode(task_id: &str, json: &[u8]) -> BrokerResult<TaskResult> {
    serde_json::from_slice(json).map_err(|e| {
        BrokerError::new(BrokerErrorKind::Corrupt, format!("stored result of task {task_id} is not valid JSON"))
            .with_source(e)
    })
}

#[async_trait]
impl ResultBackend for RedisBroker {
    async fn store(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<bool> {
        let json = serde_json::to_vec(result)
            .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a result").with_source(e))?;
        let ttl_ms = ttl.map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1));
        let mut conn = self.shared.conn.clone();
        let written: i64 = self
            .shared
            .scripts
            .store_result
            .key(keys::result(&self.shared.config.prefix, &result.task_id))
            .arg(json)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("storing a result", e))?;
        Ok(written == 1)
    }

    async fn get(&self, task_id: &str) -> BrokerResult<Option<TaskResult>> {
        let mut conn = self.shared.conn.clone();
        let key = keys::result(&self.shared.config.prefix, task_id);
        let json: Option<Vec<u8>> = conn.get(&key).await.map_err(|e| redis_error("reading a result", e))?;
        json.map(|j| decode(task_id, &j)).transpose()
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
