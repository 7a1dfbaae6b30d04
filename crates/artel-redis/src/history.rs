//! [`TaskHistory`] on Redis: one script (`lua/history_record.lua`) replaces a batch of
//! records (distinct tasks, as the worker's writer sends them), counts minutes and trims; reads walk the recent (or per-state) index newest first.

use artel_core::history::MINUTES_KEPT;
use std::sync::LazyLock;

use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, Minute, TaskFilter, TaskHistory, TaskRecord};
use async_trait::async_trait;
use redis::AsyncCommands;

use crate::broker::RedisBroker;
use crate::conn::Conn;
use crate::keys;
use crate::toolkit::redis_error;

/// Records read per round trip while filtering.
const PAGE: isize = 500;

static RECORD: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("../lua/history_record.lua")));

/// A task history under a key prefix, keeping about `kept` records, written on `bulk`
/// (a connection of its own: large requests never queue ahead of acks) and read on
/// `conn`.
#[derive(Clone)]
pub struct RedisHistory {
    keys: [String; 6],
    kept: u32,
    conn: Conn,
    bulk: Conn,
}

impl std::fmt::Debug for RedisHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHistory").field("records", &self.keys[0]).field("kept", &self.kept).finish()
    }
}

impl RedisHistory {
    /// The history under `prefix`; `bulk` may be `conn` itself.
    pub fn new(prefix: &str, kept: u32, conn: Conn, bulk: Conn) -> Self {
        Self { keys: keys::history(prefix), kept, conn, bulk }
    }
}

impl RedisBroker {
    /// This broker's task history.
    pub(crate) async fn history(&self) -> BrokerResult<RedisHistory> {
        let shared = &self.shared;
        Ok(RedisHistory::new(
            &shared.config.prefix,
            shared.config.history_kept,
            shared.conn.clone(),
            shared.bulk().await?,
        ))
    }
}

#[async_trait]
impl TaskHistory for RedisBroker {
    async fn record(&self, records: &[TaskRecord]) -> BrokerResult<()> {
        self.history().await?.record(records).await
    }

    async fn recent(&self, filter: &TaskFilter) -> BrokerResult<Vec<TaskRecord>> {
        self.history().await?.recent(filter).await
    }

    async fn find(&self, task_id: &str) -> BrokerResult<Option<TaskRecord>> {
        self.history().await?.find(task_id).await
    }

    async fn throughput(&self, since_ms: i64) -> BrokerResult<Vec<Minute>> {
        self.history().await?.throughput(since_ms).await
    }
}

#[async_trait]
impl TaskHistory for RedisHistory {
    async fn record(&self, records: &[TaskRecord]) -> BrokerResult<()> {
        let Some(newest) = records.iter().map(|r| r.updated_at_ms).max() else { return Ok(()) };
        let mut invocation = RECORD.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        invocation.arg(self.kept).arg(Minute::start(newest) - MINUTES_KEPT * 60_000);
        // The script writes each key once per batch: one record per task.
        let records = artel_core::history::latest_per_task(records);
        invocation.arg(records.len());
        for record in &records {
            let json = serde_json::to_string(record)
                .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a task record").with_source(e))?;
            invocation.arg(&record.task_id).arg(record.state.as_str()).arg(json);
        }
        for minute in Minute::tally(records) {
            invocation.arg(minute.at_ms).arg(minute.succeeded).arg(minute.failed);
        }
        let _dropped: u64 = invocation
            .invoke_async(&mut self.bulk.clone())
            .await
            .map_err(|e| redis_error("recording task history", e))?;
        Ok(())
    }

    async fn recent(&self, filter: &TaskFilter) -> BrokerResult<Vec<TaskRecord>> {
        let [records, recent, .., by_state] = self.keys.clone();
        let index = match filter.state {
            Some(state) => format!("{by_state}{}", state.as_str()),
            None => recent,
        };
        let mut conn = self.conn.clone();
        let mut found = Vec::new();
        let mut start = 0;
        while found.len() < filter.limit {
            let ids: Vec<String> = conn
                .zrevrange(&index, start, start + PAGE - 1)
                .await
                .map_err(|e| redis_error("listing recent tasks", e))?;
            if ids.is_empty() {
                break;
            }
            start += PAGE;
            let rows: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(&records)
                .arg(&ids)
                .query_async(&mut conn)
                .await
                .map_err(|e| redis_error("reading task records", e))?;
            for row in rows.iter().flatten() {
                let record = decode(row)?;
                if filter.since_ms.is_some_and(|since| record.updated_at_ms < since) {
                    return Ok(found);
                }
                if filter.admits(&record) && found.len() < filter.limit {
                    found.push(record);
                }
            }
        }
        Ok(found)
    }

    async fn find(&self, task_id: &str) -> BrokerResult<Option<TaskRecord>> {
        let [records, ..] = &self.keys;
        let row: Option<String> =
            self.conn.clone().hget(records, task_id).await.map_err(|e| redis_error("finding a task record", e))?;
        row.as_deref().map(decode).transpose()
    }

    async fn throughput(&self, since_ms: i64) -> BrokerResult<Vec<Minute>> {
        let [.., minutes, minute_index, _] = &self.keys;
        let mut conn = self.conn.clone();
        let starts: Vec<i64> = conn
            .zrangebyscore(minute_index, Minute::start(since_ms), "+inf")
            .await
            .map_err(|e| redis_error("reading throughput", e))?;
        if starts.is_empty() {
            return Ok(Vec::new());
        }
        let fields: Vec<String> = starts.iter().flat_map(|at| [format!("{at}:s"), format!("{at}:f")]).collect();
        let counts: Vec<Option<u64>> = redis::cmd("HMGET")
            .arg(minutes)
            .arg(&fields)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("reading throughput", e))?;
        Ok(starts
            .iter()
            .zip(counts.chunks(2))
            .map(|(&at_ms, pair)| Minute {
                at_ms,
                succeeded: pair.first().copied().flatten().unwrap_or(0),
                failed: pair.get(1).copied().flatten().unwrap_or(0),
            })
            .collect())
    }
}

fn decode(row: &str) -> BrokerResult<TaskRecord> {
    serde_json::from_str(row)
        .map_err(|e| BrokerError::new(BrokerErrorKind::Corrupt, "a task record is not valid JSON").with_source(e))
}
