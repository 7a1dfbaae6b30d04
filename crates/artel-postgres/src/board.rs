//! [`ControlBoard`] on the database: remote-control requests and replies in two tables.
//! Two clients posting at once may commit out of id order, so a worker reading between
//! the commits can miss the first request; its client then times out without that
//! worker's reply (and may ask again). Nothing else is lost.

use artel_core::BrokerResult;
use artel_core::worker::remote::{ControlBoard, KEPT_MS, row_cursor};
use async_trait::async_trait;

use crate::broker::PostgresBroker;
use crate::shared::pg_error;

#[async_trait]
impl ControlBoard for PostgresBroker {
    async fn post_request(&self, body: &[u8]) -> BrokerResult<()> {
        let now = self.shared.now_ms();
        sqlx::query(include_str!("../queries/control/post_request.sql"))
            .bind(now)
            .bind(now - KEPT_MS)
            .bind(body)
            .execute(&self.shared.pool)
            .await
            .map_err(|e| pg_error("posting a remote-control request", e))?;
        Ok(())
    }

    async fn requests_after(&self, cursor: Option<&str>) -> BrokerResult<(String, Vec<Vec<u8>>)> {
        let pool = &self.shared.pool;
        let Some(cursor) = row_cursor(cursor)? else {
            let last: i64 = sqlx::query_scalar(include_str!("../queries/control/last_request.sql"))
                .fetch_one(pool)
                .await
                .map_err(|e| pg_error("reading where remote-control requests stand", e))?;
            return Ok((last.to_string(), Vec::new()));
        };
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(include_str!("../queries/control/requests_after.sql"))
            .bind(cursor)
            .fetch_all(pool)
            .await
            .map_err(|e| pg_error("reading remote-control requests", e))?;
        let next = rows.last().map_or(cursor, |(id, _)| *id);
        Ok((next.to_string(), rows.into_iter().map(|(_, body)| body).collect()))
    }

    async fn post_reply(&self, ticket: &str, body: &[u8]) -> BrokerResult<()> {
        sqlx::query(include_str!("../queries/control/post_reply.sql"))
            .bind(ticket)
            .bind(self.shared.now_ms())
            .bind(body)
            .execute(&self.shared.pool)
            .await
            .map_err(|e| pg_error("posting a remote-control reply", e))?;
        Ok(())
    }

    async fn replies(&self, ticket: &str) -> BrokerResult<Vec<Vec<u8>>> {
        sqlx::query_scalar(include_str!("../queries/control/replies.sql"))
            .bind(ticket)
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|e| pg_error("reading remote-control replies", e))
    }
}
