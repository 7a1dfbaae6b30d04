//! [`TaskHistory`] on the database: the `history` and `minutes` tables (migration 0005).
//! A batch of records is one transaction: rows replaced, minutes counted, both trimmed.

use artel_core::history::MINUTES_KEPT;
use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, Minute, TaskFilter, TaskHistory, TaskRecord};
use async_trait::async_trait;

use crate::broker::SqliteBroker;
use crate::queries::{self, HistoryRow};

#[async_trait]
impl TaskHistory for SqliteBroker {
    async fn record(&self, records: &[TaskRecord]) -> BrokerResult<()> {
        let kept = self.shared.config.history_kept;
        let minutes = Minute::tally(records);
        let mut rows = Vec::with_capacity(records.len());
        for record in records {
            let json = serde_json::to_string(record)
                .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a task record").with_source(e))?;
            rows.push((record.clone(), json));
        }
        self.shared
            .db
            .call("recording task history", move |tx| {
                for (record, json) in &rows {
                    queries::history_record(
                        tx,
                        &HistoryRow {
                            task_id: &record.task_id,
                            state: record.state.as_str(),
                            task: &record.task,
                            queue: &record.queue,
                            updated: record.updated_at_ms,
                            record: json,
                        },
                    )?;
                }
                queries::history_trim(tx, kept)?;
                for minute in &minutes {
                    queries::count_minute(tx, minute)?;
                }
                if let Some(newest) = minutes.last() {
                    queries::trim_minutes(tx, newest.at_ms - MINUTES_KEPT * 60_000)?;
                }
                Ok(())
            })
            .await
    }

    async fn recent(&self, filter: &TaskFilter) -> BrokerResult<Vec<TaskRecord>> {
        let f = filter.clone();
        let rows = self.shared.db.call("listing recent tasks", move |tx| queries::history_recent(tx, &f)).await?;
        rows.iter().map(|row| decode(row)).collect()
    }

    async fn find(&self, task_id: &str) -> BrokerResult<Option<TaskRecord>> {
        let id = task_id.to_owned();
        let row = self.shared.db.call("finding a task record", move |tx| queries::history_find(tx, &id)).await?;
        row.as_deref().map(decode).transpose()
    }

    async fn throughput(&self, since_ms: i64) -> BrokerResult<Vec<Minute>> {
        let since = Minute::start(since_ms);
        self.shared.db.call("reading throughput", move |tx| queries::minutes(tx, since)).await
    }
}

fn decode(row: &str) -> BrokerResult<TaskRecord> {
    serde_json::from_str(row)
        .map_err(|e| BrokerError::new(BrokerErrorKind::Corrupt, "a task record is not valid JSON").with_source(e))
}
