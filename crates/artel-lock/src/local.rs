//! [`LocalLocks`]: locks and fenced values within this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::{Fenced, Guard, LockError, Locks};

/// Per key: whether it is held, and the last fence handed out.
type Table = Arc<Mutex<HashMap<String, (bool, u64)>>>;

/// Locks within this process (threads and tasks); cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LocalLocks {
    table: Table,
    /// Per key: the largest fence that wrote, and the value.
    values: Arc<Mutex<HashMap<String, (u64, i64)>>>,
}

impl LocalLocks {
    /// No lock held yet.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Frees its key when the guard drops.
struct Held {
    table: Table,
    key: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(entry) = self.table.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&self.key) {
            entry.0 = false;
        }
    }
}

#[async_trait]
impl Locks for LocalLocks {
    async fn try_acquire(&self, key: &str) -> Result<Option<Guard>, LockError> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let entry = table.entry(key.to_owned()).or_insert((false, 0));
        if entry.0 {
            return Ok(None);
        }
        *entry = (true, entry.1 + 1);
        let fence = entry.1;
        drop(table);
        Ok(Some(Guard::new(key, fence, Held { table: self.table.clone(), key: key.to_owned() })))
    }
}

#[async_trait]
impl Fenced for LocalLocks {
    async fn advance(&self, key: &str, fence: u64, value: i64) -> Result<bool, LockError> {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        match values.get(key) {
            Some(&(stored_fence, stored)) if fence < stored_fence || value <= stored => Ok(false),
            _ => {
                values.insert(key.to_owned(), (fence, value));
                Ok(true)
            }
        }
    }

    async fn read(&self, key: &str) -> Result<Option<i64>, LockError> {
        Ok(self.values.lock().unwrap_or_else(|e| e.into_inner()).get(key).map(|&(_, value)| value))
    }
}

impl crate::LockServer for LocalLocks {
    /// Locks of this process need no lease: a holder that dies takes the process with it.
    fn locks(&self, _lease: std::time::Duration) -> Arc<dyn crate::Coordination> {
        Arc::new(self.clone())
    }
}
