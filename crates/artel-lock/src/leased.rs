//! [`Leased`]: the [`Locks`] of any backend whose locks are leases on a shared server
//! (Redis, SQLite, etcd), built from three verbs ([`LeaseLocks`]).
//!
//! Invariants: a lock is taken with a random holder token and a lease; while its guard
//! lives the lease is renewed every third of it; renewals and the release name the token,
//! so a holder never extends or frees a lock someone else has since taken. When a renewal
//! finds the lease gone, the guard reports [`LockError::Lost`] from [`Guard::check`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::{Fenced, Guard, LockError, Locks, check_key};

/// The shortest lease: renewals every third of it must still reach the server in time.
const MIN_LEASE: Duration = Duration::from_millis(30);

/// The verbs of a backend keeping locks as leases.
#[async_trait]
pub trait LeaseLocks: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// Takes `key` with `lease` if it is free (or its lease lapsed): the holder's token
    /// and the new fence, larger than every earlier one of `key`.
    async fn take(&self, key: &str, lease: Duration) -> std::io::Result<Option<(String, u64)>>;

    /// Extends the lease of `key` held under `token`; `false` when it was lost.
    async fn renew(&self, key: &str, token: &str, lease: Duration) -> std::io::Result<bool>;

    /// Frees `key` if `token` still holds it.
    async fn release(&self, key: &str, token: &str) -> std::io::Result<()>;
}

/// Locks with leases on `B`, renewed while held.
#[derive(Debug, Clone)]
pub struct Leased<B> {
    backend: B,
    lease: Duration,
}

impl<B: LeaseLocks> Leased<B> {
    /// Locks on `backend`, each held with `lease` (a holder that dies frees it within it).
    pub fn new(backend: B, lease: Duration) -> Self {
        Self { backend, lease: lease.max(MIN_LEASE) }
    }

    /// The lease each lock is held with.
    pub fn lease(&self) -> Duration {
        self.lease
    }
}

/// Renews a held lock until dropped, then releases it.
struct Held<B: LeaseLocks> {
    renewing: tokio::task::JoinHandle<()>,
    backend: B,
    key: String,
    token: String,
}

impl<B: LeaseLocks> Drop for Held<B> {
    fn drop(&mut self) {
        self.renewing.abort();
        let (backend, key, token) =
            (self.backend.clone(), std::mem::take(&mut self.key), std::mem::take(&mut self.token));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = backend.release(&key, &token).await {
                    tracing::warn!(%key, %error, "could not release a lock; it frees itself when its lease lapses");
                }
            });
        }
    }
}

#[async_trait]
impl<B: LeaseLocks> Locks for Leased<B> {
    async fn try_acquire(&self, key: &str) -> Result<Option<Guard>, LockError> {
        check_key(key)?;
        let io = |source| LockError::Io { key: key.to_owned(), source };
        let Some((token, fence)) = self.backend.take(key, self.lease).await.map_err(io)? else { return Ok(None) };
        let lost = Arc::new(AtomicBool::new(false));
        let renewing = tokio::spawn(renew(self.clone(), key.to_owned(), token.clone(), lost.clone()));
        let held = Held { renewing, backend: self.backend.clone(), key: key.to_owned(), token };
        Ok(Some(Guard::new(key, fence, held).with_lease(lost)))
    }
}

#[async_trait]
impl<B: LeaseLocks + Fenced> Fenced for Leased<B> {
    async fn advance(&self, key: &str, fence: u64, value: i64) -> Result<bool, LockError> {
        self.backend.advance(key, fence, value).await
    }

    async fn read(&self, key: &str) -> Result<Option<i64>, LockError> {
        self.backend.read(key).await
    }
}

/// Extends the lease every third of it until the guard drops or the lease is lost.
async fn renew<B: LeaseLocks>(locks: Leased<B>, key: String, token: String, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(locks.lease / 3).await;
        match locks.backend.renew(&key, &token, locks.lease).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(%key, "lost a lock: its lease lapsed while held");
                lost.store(true, Ordering::Release);
                return;
            }
            Err(error) => tracing::warn!(%key, %error, "could not renew a lock's lease; trying again"),
        }
    }
}

/// A random holder token.
pub fn token() -> String {
    format!("{:032x}", fastrand::u128(..))
}
