//! [`MemoryUnique`]: unique task keys within this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::broker::BrokerResult;
use crate::unique::UniqueKeys;

/// Unique task keys in this process: key → (task id, lapses at); clones share them.
#[derive(Debug, Clone, Default)]
pub struct MemoryUnique {
    claims: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

#[async_trait]
impl UniqueKeys for MemoryUnique {
    async fn claim_unique(&self, key: &str, task_id: &str, ttl: Duration) -> BrokerResult<String> {
        let now = Instant::now();
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        claims.retain(|_, (_, lapses)| *lapses > now);
        let (holder, _) = claims.entry(key.to_owned()).or_insert_with(|| (task_id.to_owned(), now + ttl));
        Ok(holder.clone())
    }

    async fn release_unique(&self, key: &str, task_id: &str) -> BrokerResult<()> {
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        if claims.get(key).is_some_and(|(holder, _)| holder == task_id) {
            claims.remove(key);
        }
        Ok(())
    }
}
