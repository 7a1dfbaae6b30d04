//! The worker's revoked set, kept current by polling the result backend and consulted
//! before each run. Revocations with terminate are handed back to the caller, which stops
//! the running tasks they name ([`crate::active::ActiveTasks::terminate`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use artel_core::{BrokerResult, Revocation, Revocations, Timestamp, lock};

/// Revoked ids, until their expiry, and how far the backend's revocations were read.
#[derive(Debug, Default)]
pub(crate) struct Revoked {
    ids: Mutex<HashMap<String, Timestamp>>,
    cursor: AtomicU64,
}

impl Revoked {
    /// Whether task `id` was revoked.
    pub(crate) fn contains(&self, id: &str) -> bool {
        lock(&self.ids).contains_key(id)
    }

    /// The ids revoked and not yet forgotten.
    pub(crate) fn ids(&self) -> Vec<String> {
        lock(&self.ids).keys().cloned().collect()
    }

    /// Takes in new revocations and forgets expired ones; returns the ids to terminate.
    pub(crate) fn apply(&self, revocations: Vec<Revocation>, now: Timestamp) -> Vec<String> {
        let mut ids = lock(&self.ids);
        ids.retain(|_, expires| *expires > now);
        let mut terminate = Vec::new();
        for r in revocations {
            if r.terminate {
                terminate.push(r.task_id.clone());
            }
            ids.insert(r.task_id, r.expires_at);
        }
        terminate
    }

    /// Reads every revocation recorded since the last call; returns the ids to terminate.
    pub(crate) async fn refresh(&self, log: &dyn Revocations, now: Timestamp) -> BrokerResult<Vec<String>> {
        let mut terminate = Vec::new();
        loop {
            let cursor = self.cursor.load(Ordering::Acquire);
            let (revocations, next) = log.revocations(cursor).await?;
            let more = next != cursor && !revocations.is_empty();
            terminate.extend(self.apply(revocations, now));
            self.cursor.store(next, Ordering::Release);
            if !more {
                return Ok(terminate);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_core::memory::MemoryBackend;
    use artel_core::{Clock, SystemClock};

    #[tokio::test]
    async fn revocations_are_remembered_until_they_expire_and_terminates_are_returned() {
        let backend = MemoryBackend::new();
        let revoked = Revoked::default();
        let now = SystemClock.now();
        let later = now + chrono::Duration::hours(1);
        for (id, terminate) in [("queued", false), ("busy", true)] {
            let r = Revocation { task_id: id.to_owned(), terminate, expires_at: later };
            backend.revoke(&r).await.expect("revoke");
        }
        assert_eq!(revoked.refresh(&backend, now).await.expect("refresh"), vec!["busy".to_owned()]);
        assert!(revoked.contains("queued") && revoked.contains("busy") && !revoked.contains("other"));
        assert!(revoked.refresh(&backend, now).await.expect("refresh").is_empty(), "read once");
        revoked.refresh(&backend, later + chrono::Duration::seconds(1)).await.expect("refresh");
        assert!(!revoked.contains("queued"), "forgotten after expiry");
    }
}
