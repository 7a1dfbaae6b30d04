//! [`ControlBoard`] on Redis: requests in one stream (`XADD`, read on with `XRANGE` from
//! each worker's last id; entries older than a minute trimmed at each post), replies in
//! one list per ticket. Both keys expire a minute after their last write, so an idle
//! board leaves nothing behind; stream ids grow with the server's clock, so a cursor
//! stays valid across an expired stream.

use artel_core::BrokerResult;
use artel_core::worker::remote::{ControlBoard, KEPT_MS};
use async_trait::async_trait;

use crate::broker::RedisBroker;
use crate::keys;
use crate::toolkit::redis_error;

/// Requests read at once.
const READ_AT_ONCE: usize = 100;

#[async_trait]
impl ControlBoard for RedisBroker {
    async fn post_request(&self, body: &[u8]) -> BrokerResult<()> {
        let key = keys::control_requests(&self.shared.config.prefix);
        let oldest = self.shared.now_ms() - KEPT_MS;
        let _: () = redis::pipe()
            .cmd("XADD")
            .arg(&key)
            .arg("MINID")
            .arg("~")
            .arg(oldest.max(0))
            .arg("*")
            .arg("body")
            .arg(body)
            .ignore()
            .pexpire(&key, KEPT_MS)
            .ignore()
            .query_async(&mut self.shared.conn.clone())
            .await
            .map_err(|e| redis_error("posting a remote-control request", e))?;
        Ok(())
    }

    async fn requests_after(&self, cursor: Option<&str>) -> BrokerResult<(String, Vec<Vec<u8>>)> {
        let key = keys::control_requests(&self.shared.config.prefix);
        let mut conn = self.shared.conn.clone();
        // Each entry: its id, then its fields and values (`body`, the request).
        let mut read = match cursor {
            None => redis::cmd("XREVRANGE"),
            Some(_) => redis::cmd("XRANGE"),
        };
        match cursor {
            None => read.arg(&key).arg("+").arg("-").arg("COUNT").arg(1),
            Some(cursor) => read.arg(&key).arg(format!("({cursor}")).arg("+").arg("COUNT").arg(READ_AT_ONCE),
        };
        let entries: Vec<(String, Vec<Vec<u8>>)> =
            read.query_async(&mut conn).await.map_err(|e| redis_error("reading remote-control requests", e))?;
        let last = entries.last().map(|(id, _)| id.clone());
        let next = last.or_else(|| cursor.map(str::to_owned)).unwrap_or_else(|| "0-0".to_owned());
        if cursor.is_none() {
            return Ok((next, Vec::new()));
        }
        Ok((
            next,
            entries.into_iter().filter_map(|(_, mut fields)| (fields.len() == 2).then(|| fields.remove(1))).collect(),
        ))
    }

    async fn post_reply(&self, ticket: &str, body: &[u8]) -> BrokerResult<()> {
        let key = keys::control_replies(&self.shared.config.prefix, ticket);
        let _: () = redis::pipe()
            .rpush(&key, body)
            .ignore()
            .pexpire(&key, KEPT_MS)
            .ignore()
            .query_async(&mut self.shared.conn.clone())
            .await
            .map_err(|e| redis_error("posting a remote-control reply", e))?;
        Ok(())
    }

    async fn replies(&self, ticket: &str) -> BrokerResult<Vec<Vec<u8>>> {
        let key = keys::control_replies(&self.shared.config.prefix, ticket);
        redis::cmd("LRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.shared.conn.clone())
            .await
            .map_err(|e| redis_error("reading remote-control replies", e))
    }
}
