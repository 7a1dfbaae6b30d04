//! `memory://`: an in-process broker and result backend.
//!
//! The reference implementation of the broker traits, used by `App::local()` and tests.
//! It honours priorities (higher first), holds delayed messages until due, and puts
//! undecided deliveries back; it keeps nothing across restarts.

mod backend;
mod broker;
mod history;
mod unique;

use std::sync::Arc;

pub use backend::MemoryBackend;
pub use broker::MemoryBroker;
pub use history::MemoryHistory;
pub use unique::MemoryUnique;

/// A memory broker and its stores, with locks, unique task keys and a task history of
/// this process.
pub fn backend() -> crate::Backend {
    crate::Backend::new(Arc::new(MemoryBroker::new()), MemoryBackend::new())
        .with_locks(Arc::new(artel_lock::LocalLocks::new()))
        .with_unique(Arc::new(MemoryUnique::default()))
        .with_history(Arc::new(MemoryHistory::default()))
}
