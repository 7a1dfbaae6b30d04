//! [`MemoryHistory`]: the task history of this process, the reference for the stores'.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::broker::BrokerResult;
use crate::history::{HISTORY_KEPT, MINUTES_KEPT, Minute, TaskFilter, TaskHistory, TaskRecord};

/// Records by write order (a sequence number) and by id, and counts by minute; clones
/// share them.
#[derive(Debug, Clone, Default)]
pub struct MemoryHistory {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    by_seq: BTreeMap<u64, TaskRecord>,
    seq_of: HashMap<String, u64>,
    minutes: BTreeMap<i64, Minute>,
}

impl MemoryHistory {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl TaskHistory for MemoryHistory {
    async fn record(&self, records: &[TaskRecord]) -> BrokerResult<()> {
        let mut inner = self.inner();
        for counted in Minute::tally(records) {
            let minute =
                inner.minutes.entry(counted.at_ms).or_insert(Minute { at_ms: counted.at_ms, ..Minute::default() });
            minute.succeeded += counted.succeeded;
            minute.failed += counted.failed;
        }
        for record in records {
            if let Some(old) = inner.seq_of.remove(&record.task_id) {
                inner.by_seq.remove(&old);
            }
            inner.next += 1;
            let seq = inner.next;
            inner.seq_of.insert(record.task_id.clone(), seq);
            inner.by_seq.insert(seq, record.clone());
        }
        while inner.by_seq.len() > HISTORY_KEPT as usize {
            let Some((_, oldest)) = inner.by_seq.pop_first() else { break };
            inner.seq_of.remove(&oldest.task_id);
        }
        if let Some(&newest) = inner.minutes.keys().next_back() {
            inner.minutes.retain(|at, _| *at > newest - MINUTES_KEPT * 60_000);
        }
        Ok(())
    }

    async fn recent(&self, filter: &TaskFilter) -> BrokerResult<Vec<TaskRecord>> {
        let inner = self.inner();
        Ok(inner.by_seq.values().rev().filter(|r| filter.admits(r)).take(filter.limit).cloned().collect())
    }

    async fn find(&self, task_id: &str) -> BrokerResult<Option<TaskRecord>> {
        let inner = self.inner();
        Ok(inner.seq_of.get(task_id).and_then(|seq| inner.by_seq.get(seq)).cloned())
    }

    async fn throughput(&self, since_ms: i64) -> BrokerResult<Vec<Minute>> {
        Ok(self.inner().minutes.range(Minute::start(since_ms)..).map(|(_, m)| *m).collect())
    }
}
