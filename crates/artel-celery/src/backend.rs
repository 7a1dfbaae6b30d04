//! Results in Celery's Redis result backend format (docs/wire-format.md §d): what Python's
//! `AsyncResult.get()` reads, and what artel reads of Python workers' results.

use std::time::Duration;

use artel_core::{
    BrokerError, BrokerErrorKind, BrokerResult, Chords, ResultBackend, ResultFeed, Revocation, Revocations, State,
    TaskResult,
};
use artel_redis::feed::PublishedFeed;
use artel_redis::toolkit::{RevocationLog, get_many, redis_error, store_result, ttl_ms, wait_published};
use async_trait::async_trait;
use redis::AsyncCommands;
use serde_json::{Value, json};

use crate::broker::CeleryRedis;
use crate::wire::Wire;

/// How long a chord member holds the right to call the body (Celery 5.7's claim).
const CHORD_CLAIM: Duration = Duration::from_secs(6);

fn decode<T: serde::de::DeserializeOwned>(what: &str, json: &[u8]) -> BrokerResult<T> {
    serde_json::from_slice(json)
        .map_err(|e| BrokerError::new(BrokerErrorKind::Corrupt, format!("{what} is not valid JSON")).with_source(e))
}

/// A chord member as Celery stores it in `G.j`: `[1, task_id, state, result]`.
fn chord_member(result: &TaskResult) -> Value {
    json!([1, result.task_id, result.status, result.result])
}

fn from_chord_member(json: &[u8]) -> BrokerResult<TaskResult> {
    let (_, task_id, status, result): (Value, String, State, Value) = decode("a chord member", json)?;
    let mut stored = TaskResult::progress(&task_id, status, result);
    stored.status = status;
    Ok(stored)
}

impl CeleryRedis {
    fn revocation_log(&self) -> RevocationLog {
        let (log, seq) = self.shared.names.revocations();
        RevocationLog { log, seq }
    }
}

#[async_trait]
impl ResultBackend for CeleryRedis {
    fn store_identity(&self) -> Option<usize> {
        Some(std::sync::Arc::as_ptr(&self.shared) as usize)
    }

    async fn store(&self, result: &TaskResult, ttl: Option<Duration>) -> BrokerResult<bool> {
        store_result(&mut self.shared.conn.clone(), &self.shared.names.result(&result.task_id), result, ttl).await
    }

    async fn get(&self, task_id: &str) -> BrokerResult<Option<TaskResult>> {
        let mut conn = self.shared.conn.clone();
        let json: Option<Vec<u8>> =
            conn.get(self.shared.names.result(task_id)).await.map_err(|e| redis_error("reading a result", e))?;
        json.map(|j| decode(&format!("the result of task {task_id}"), &j)).transpose()
    }

    async fn wait(&self, task_id: &str, timeout: Duration) -> BrokerResult<TaskResult> {
        let key = self.shared.names.result(task_id);
        wait_published(std::slice::from_ref(&self.shared.client), &key, task_id, timeout, || self.get(task_id)).await
    }

    async fn get_many(&self, task_ids: &[String]) -> BrokerResult<Vec<Option<TaskResult>>> {
        let keys: Vec<String> = task_ids.iter().map(|id| self.shared.names.result(id)).collect();
        get_many(&mut self.shared.conn.clone(), &keys, task_ids).await
    }

    async fn feed(&self) -> BrokerResult<Box<dyn ResultFeed>> {
        let names = self.shared.names.clone();
        Ok(Box::new(PublishedFeed::new(vec![self.shared.client.clone()], move |id| names.result(id))))
    }

    /// Celery's own layout: `{"result": [[gid, null], [[[id, null], null], ...]]}`.
    async fn save_group(&self, group_id: &str, task_ids: &[String], ttl: Option<Duration>) -> BrokerResult<()> {
        let members: Vec<Value> = task_ids.iter().map(|id| json!([[id, null], null])).collect();
        let saved = serde_json::to_vec(&json!({"result": [[group_id, null], members]}))
            .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a group").with_source(e))?;
        let key = self.shared.names.chord(group_id, "");
        let mut conn = self.shared.conn.clone();
        let mut pipe = redis::pipe();
        match ttl {
            Some(_) => pipe.pset_ex(&key, &saved, ttl_ms(ttl)).ignore(),
            None => pipe.set(&key, &saved).ignore(),
        };
        pipe.publish(&key, &saved).ignore();
        pipe.query_async::<()>(&mut conn).await.map_err(|e| redis_error("saving a group", e))
    }

    async fn restore_group(&self, group_id: &str) -> BrokerResult<Option<Vec<String>>> {
        let mut conn = self.shared.conn.clone();
        let saved: Option<Vec<u8>> =
            conn.get(self.shared.names.chord(group_id, "")).await.map_err(|e| redis_error("reading a group", e))?;
        let Some(saved) = saved else { return Ok(None) };
        let saved: Value = decode(&format!("saved group {group_id}"), &saved)?;
        let ids = saved
            .pointer("/result/1")
            .and_then(Value::as_array)
            .map(|members| members.iter().filter_map(|m| m.pointer("/0/0")?.as_str().map(str::to_owned)).collect());
        Ok(ids)
    }
}

#[async_trait]
impl Chords for CeleryRedis {
    async fn prepare_chord(&self, group_id: &str, size: u32, ttl: Option<Duration>) -> BrokerResult<()> {
        let names = &self.shared.names;
        let mut conn = self.shared.conn.clone();
        let mut pipe = redis::pipe();
        pipe.del(names.chord(group_id, ".c")).ignore();
        match ttl {
            Some(ttl) => pipe.set_ex(names.chord(group_id, ".s"), size, ttl.as_secs().max(1)).ignore(),
            None => pipe.set(names.chord(group_id, ".s"), size).ignore(),
        };
        pipe.query_async::<()>(&mut conn).await.map_err(|e| redis_error("recording a chord's size", e))
    }

    async fn chord_part(
        &self,
        group_id: &str,
        index: u32,
        size: Option<u32>,
        result: &TaskResult,
        ttl: Option<Duration>,
    ) -> BrokerResult<Option<Vec<TaskResult>>> {
        let names = &self.shared.names;
        let member = serde_json::to_vec(&chord_member(result))
            .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a chord member").with_source(e))?;
        let mut conn = self.shared.conn.clone();
        let parts: Option<Vec<Vec<u8>>> = self
            .shared
            .scripts
            .chord_part
            .key(names.chord(group_id, ".j"))
            .key(names.chord(group_id, ".t"))
            .key(names.chord(group_id, ".s"))
            .key(names.chord(group_id, ".d"))
            .key(names.chord(group_id, ".c"))
            .arg(&result.task_id)
            .arg(index)
            .arg(member)
            .arg(size.unwrap_or(0))
            .arg(ttl_ms(ttl))
            .arg(uuid::Uuid::new_v4().to_string())
            .arg(CHORD_CLAIM.as_millis() as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("recording a chord member", e))?;
        parts.map(|parts| parts.iter().map(|json| from_chord_member(json)).collect()).transpose()
    }
}

#[async_trait]
impl Revocations for CeleryRedis {
    /// Records the revocation for artel workers and broadcasts Celery's `revoke` control
    /// command (over the broker's wire) so Python workers honour it too.
    async fn revoke(&self, revocation: &Revocation) -> BrokerResult<()> {
        let mut conn = self.shared.conn.clone();
        self.revocation_log().record(&mut conn, revocation).await?;
        let request = json!({
            "method": "revoke",
            "arguments": {"task_id": revocation.task_id, "terminate": revocation.terminate, "signal": null},
            "destination": null, "pattern": null, "matcher": null,
        });
        let body = serde_json::to_vec(&request).unwrap_or_default();
        match self.control_wire() {
            Some(wire) => wire.broadcast(&body).await,
            None => self.broadcast(&body).await,
        }
    }

    async fn revocations(&self, cursor: u64) -> BrokerResult<(Vec<Revocation>, u64)> {
        self.revocation_log().read(&mut self.shared.conn.clone(), cursor).await
    }
}
