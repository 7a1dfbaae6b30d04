//! [`TaskHistory`] on the database: the `history` and `minutes` tables (migration 0005).
//! A batch of records is one transaction: rows replaced (one statement), minutes counted,
//! both trimmed.

use artel_core::history::MINUTES_KEPT;
use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, Minute, TaskFilter, TaskHistory, TaskRecord};
use async_trait::async_trait;

use crate::broker::PostgresBroker;
use crate::shared::pg_error;

#[async_trait]
impl TaskHistory for PostgresBroker {
    async fn record(&self, records: &[TaskRecord]) -> BrokerResult<()> {
        let recording = |e| pg_error("recording task history", e);
        // One row per task, its last record (ON CONFLICT may touch a row once).
        let mut last = std::collections::HashMap::new();
        for (n, record) in records.iter().enumerate() {
            last.insert(record.task_id.as_str(), n);
        }
        let latest: Vec<&TaskRecord> = records
            .iter()
            .enumerate()
            .filter(|(n, r)| last.get(r.task_id.as_str()) == Some(n))
            .map(|(_, r)| r)
            .collect();
        let json = latest
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a task record").with_source(e))?;
        let mut tx = self.shared.settle.begin().await.map_err(recording)?;
        sqlx::query(include_str!("../queries/history/record.sql"))
            .bind(latest.iter().map(|r| r.task_id.as_str()).collect::<Vec<_>>())
            .bind(latest.iter().map(|r| r.state.as_str()).collect::<Vec<_>>())
            .bind(latest.iter().map(|r| r.task.as_str()).collect::<Vec<_>>())
            .bind(latest.iter().map(|r| r.queue.as_str()).collect::<Vec<_>>())
            .bind(latest.iter().map(|r| r.updated_at_ms).collect::<Vec<_>>())
            .bind(json)
            .execute(&mut *tx)
            .await
            .map_err(recording)?;
        sqlx::query(include_str!("../queries/history/trim.sql"))
            .bind(i64::from(self.shared.config.history_kept))
            .execute(&mut *tx)
            .await
            .map_err(recording)?;
        let minutes = Minute::tally(records);
        for minute in &minutes {
            sqlx::query(include_str!("../queries/history/count_minute.sql"))
                .bind(minute.at_ms)
                .bind(i64::try_from(minute.succeeded).unwrap_or(i64::MAX))
                .bind(i64::try_from(minute.failed).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await
                .map_err(recording)?;
        }
        if let Some(newest) = minutes.last() {
            sqlx::query(include_str!("../queries/history/trim_minutes.sql"))
                .bind(newest.at_ms - MINUTES_KEPT * 60_000)
                .execute(&mut *tx)
                .await
                .map_err(recording)?;
        }
        tx.commit().await.map_err(recording)
    }

    async fn recent(&self, filter: &TaskFilter) -> BrokerResult<Vec<TaskRecord>> {
        let rows: Vec<String> = sqlx::query_scalar(include_str!("../queries/history/recent.sql"))
            .bind(filter.state.map(artel_core::State::as_str))
            .bind(filter.task.as_deref())
            .bind(filter.queue.as_deref())
            .bind(filter.since_ms)
            .bind(i64::try_from(filter.limit).unwrap_or(i64::MAX))
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|e| pg_error("listing recent tasks", e))?;
        rows.iter().map(|row| decode(row)).collect()
    }

    async fn find(&self, task_id: &str) -> BrokerResult<Option<TaskRecord>> {
        let row: Option<String> = sqlx::query_scalar(include_str!("../queries/history/find.sql"))
            .bind(task_id)
            .fetch_optional(&self.shared.pool)
            .await
            .map_err(|e| pg_error("finding a task record", e))?;
        row.as_deref().map(decode).transpose()
    }

    async fn throughput(&self, since_ms: i64) -> BrokerResult<Vec<Minute>> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(include_str!("../queries/history/minutes.sql"))
            .bind(Minute::start(since_ms))
            .fetch_all(&self.shared.pool)
            .await
            .map_err(|e| pg_error("reading throughput", e))?;
        Ok(rows
            .into_iter()
            .map(|(at_ms, succeeded, failed)| Minute {
                at_ms,
                succeeded: u64::try_from(succeeded).unwrap_or(0),
                failed: u64::try_from(failed).unwrap_or(0),
            })
            .collect())
    }
}

fn decode(row: &str) -> BrokerResult<TaskRecord> {
    serde_json::from_str(row)
        .map_err(|e| BrokerError::new(BrokerErrorKind::Corrupt, "a task record is not valid JSON").with_source(e))
}

#[cfg(test)]
mod tests {
    /// The final states the SQL guards keep must be exactly the ready states.
    #[test]
    fn the_sql_result_guards_list_exactly_the_ready_states() {
        for sql in [include_str!("../queries/result/store.sql"), include_str!("../queries/message/complete.sql")] {
            let guard = sql.lines().find(|l| l.contains("NOT IN")).expect("the guard line");
            artel_broker_tests::assert_guard_names_exactly_the_ready_states(guard);
        }
    }
}
