//! Locks with one API ([`Locks`]): [`Locks::try_acquire`] and [`Locks::acquire`] (with a
//! timeout) give a [`Guard`] that releases the lock when dropped, and whose
//! [`Guard::fence`] grows with every acquisition of the same key, so a resource can
//! refuse a late write from a holder that has since lost the lock (a fencing token).
//!
//! Backends: [`LocalLocks`] (this process), [`FileLocks`] (processes on one machine,
//! like Python's fasteners: `flock` on one file per key, released by the kernel when its
//! holder dies), and [`Leased`] over any server that keeps leases ([`LeaseLocks`]: the
//! Redis, SQLite and etcd backends live in their own crates).
//!
//! A resource that must refuse a stale holder's late write checks the writer's fence;
//! [`Fenced`] is such a resource offered by the backends themselves (a value per key
//! that only grows, written only under the newest fence), which beat's "last fired"
//! records use.
//!
//! ```
//! use std::time::Duration;
//! use artel_lock::{FileLocks, LockError, Locks};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Shared by every process on this machine (fasteners' InterProcessLock); a broker's
//! // locks (`Backend::locks`) or etcd's have the same API across machines.
//! let dir = std::env::temp_dir().join(format!("artel-doc-locks-{}", std::process::id()));
//! let locks = FileLocks::new(&dir);
//! let guard = locks.acquire("nightly-report", Duration::from_secs(5)).await?;
//! // Held: another holder waits at most its timeout, then hears why.
//! let refused = locks.acquire("nightly-report", Duration::from_millis(20)).await;
//! assert!(matches!(refused, Err(LockError::Timeout { .. })));
//! let fence = guard.fence(); // hand it to a store that refuses older fences
//! drop(guard);
//! let next = locks.try_acquire("nightly-report").await?.expect("free again");
//! assert!(next.fence() > fence);
//! # drop(next);
//! # std::fs::remove_dir_all(dir)?;
//! # Ok(())
//! # }
//! ```

mod file;
mod leased;
mod local;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;

pub use file::FileLocks;
pub use leased::{LeaseLocks, Leased, token};
pub use local::LocalLocks;

/// Why a lock was not acquired.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Someone else held it for the whole timeout.
    #[error("lock {key:?} is still held by someone else after {waited:?}")]
    Timeout {
        /// The key.
        key: String,
        /// How long this caller waited.
        waited: Duration,
    },
    /// The key cannot name a lock.
    #[error("{0:?} cannot name a lock: use letters, digits, `.`, `_` and `-`")]
    InvalidKey(String),
    /// The lock's lease ran out while it was held (the holder stalled past it, or the
    /// backend lost it): another holder may have it now, with a larger fence.
    #[error("lock {key:?} was lost: its lease lapsed while held; stop, and write nothing fenced with it")]
    Lost {
        /// The key.
        key: String,
    },
    /// The backend failed.
    #[error("lock {key:?}: {source}")]
    Io {
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A held lock: released when dropped.
pub struct Guard {
    key: String,
    fence: u64,
    lost: Option<Arc<AtomicBool>>,
    _held: Box<dyn Send + Sync>,
}

impl Guard {
    /// A guard of `key` with `fence`; `held` releases the lock when dropped.
    pub fn new(key: &str, fence: u64, held: impl Send + Sync + 'static) -> Self {
        Self { key: key.to_owned(), fence, lost: None, _held: Box::new(held) }
    }

    /// This guard, told by `lost` when a leased lock's lease ran out while held.
    pub fn with_lease(mut self, lost: Arc<AtomicBool>) -> Self {
        self.lost = Some(lost);
        self
    }

    /// `Ok` while the lock is still held; [`LockError::Lost`] once its lease ran out.
    pub fn check(&self) -> Result<(), LockError> {
        match &self.lost {
            Some(lost) if lost.load(Ordering::Acquire) => Err(LockError::Lost { key: self.key.clone() }),
            _ => Ok(()),
        }
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// This acquisition's fencing token: larger than every earlier acquisition's.
    pub fn fence(&self) -> u64 {
        self.fence
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("key", &self.key).field("fence", &self.fence).finish()
    }
}

/// Pauses between attempts while waiting: doubling from the first to the second.
const RETRY: (Duration, Duration) = (Duration::from_millis(1), Duration::from_millis(50));

/// A lock service.
#[async_trait]
pub trait Locks: Send + Sync + std::fmt::Debug {
    /// Takes the lock on `key` if it is free.
    async fn try_acquire(&self, key: &str) -> Result<Option<Guard>, LockError>;

    /// Takes the lock on `key`, waiting up to `timeout` for it to be free.
    async fn acquire(&self, key: &str, timeout: Duration) -> Result<Guard, LockError> {
        let started = tokio::time::Instant::now();
        let mut pause = RETRY.0;
        loop {
            if let Some(guard) = self.try_acquire(key).await? {
                return Ok(guard);
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(LockError::Timeout { key: key.to_owned(), waited });
            }
            tokio::time::sleep(pause.min(timeout - waited)).await;
            pause = (pause * 2).min(RETRY.1);
        }
    }
}

/// Values that only grow, each written only by the newest holder of a lock: a write
/// carries the writer's fence and is refused once a write with a larger fence was made.
#[async_trait]
pub trait Fenced: Send + Sync + std::fmt::Debug {
    /// Stores `value` under `key` when no larger fence has written there and `value` is
    /// larger than the stored one; whether it was stored.
    async fn advance(&self, key: &str, fence: u64, value: i64) -> Result<bool, LockError>;

    /// The value stored under `key`, if any.
    async fn read(&self, key: &str) -> Result<Option<i64>, LockError>;
}

/// A backend offering both locks and fenced values: what leader election needs.
pub trait Coordination: Locks + Fenced {}

impl<T: Locks + Fenced> Coordination for T {}

/// A server handing out locks and fenced values, with the lease of the caller's choice.
pub trait LockServer: Send + Sync + std::fmt::Debug {
    /// Its locks, each held with `lease` and renewed while held.
    fn locks(&self, lease: Duration) -> Arc<dyn Coordination>;
}

impl<B: LeaseLocks + Fenced> LockServer for B {
    fn locks(&self, lease: Duration) -> Arc<dyn Coordination> {
        Arc::new(Leased::new(self.clone(), lease))
    }
}

/// Whether `key` can name a lock (letters, digits, `.`, `_`, `-`: a file name anywhere).
pub fn check_key(key: &str) -> Result<(), LockError> {
    let fine = !key.is_empty()
        && !key.starts_with('.')
        && key.len() <= 200
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if fine { Ok(()) } else { Err(LockError::InvalidKey(key.to_owned())) }
}
