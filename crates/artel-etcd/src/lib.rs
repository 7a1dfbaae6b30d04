//! Locks and fenced values on etcd ([`EtcdLocks`]), for processes on any machine; the
//! backend of `artel::lock` for teams that already run etcd.
//!
//! A lock is a key created only when absent, attached to an etcd lease of its own; the
//! lease id is the holder's token. The fence is the revision the creating transaction
//! committed at: etcd's revisions only grow, so every later acquisition of any key gets
//! a larger one. Renewing checks that the key still holds this lease before keeping the
//! lease alive; releasing revokes the lease, which deletes only this holder's key. A
//! holder that dies stops keeping its lease alive and etcd deletes the key when the
//! lease's TTL (whole seconds, at least etcd's minimum) runs out.
//!
//! A fenced value is a key holding `fence:value`, replaced by a compare-and-swap on its
//! modification revision.

use std::time::Duration;

use artel_lock::{Fenced, LeaseLocks, Leased, LockError, check_key};
use async_trait::async_trait;
use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};

/// Locks and fenced values on an etcd cluster, under a key prefix; cheap to clone.
#[derive(Clone)]
pub struct EtcdLocks {
    client: Client,
    prefix: String,
}

impl std::fmt::Debug for EtcdLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdLocks").field("prefix", &self.prefix).finish()
    }
}

fn io(e: etcd_client::Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl EtcdLocks {
    /// Connects to the etcd endpoints (`http://127.0.0.1:2379`), keeping keys under
    /// `prefix`.
    pub async fn connect(endpoints: &[&str], prefix: &str) -> std::io::Result<Self> {
        let client = Client::connect(endpoints, None).await.map_err(|e| {
            std::io::Error::other(format!("cannot reach etcd at {endpoints:?} (is etcd running there?): {e}"))
        })?;
        Ok(Self { client, prefix: prefix.to_owned() })
    }

    /// Locks each held with `lease` (rounded up to whole seconds) and renewed while held.
    pub fn locks(&self, lease: Duration) -> Leased<Self> {
        Leased::new(self.clone(), lease)
    }

    fn lock_key(&self, key: &str) -> String {
        format!("{}/lock/{key}", self.prefix)
    }

    fn value_key(&self, key: &str) -> String {
        format!("{}/fenced/{key}", self.prefix)
    }

    /// The stored (fence, value) and the key's modification revision (0: absent).
    async fn current(&self, key: &str) -> std::io::Result<(Option<(u64, i64)>, i64)> {
        let got = self.client.clone().get(self.value_key(key), None).await.map_err(io)?;
        let Some(kv) = got.kvs().first() else { return Ok((None, 0)) };
        let text = String::from_utf8_lossy(kv.value()).into_owned();
        let parsed = text.split_once(':').and_then(|(f, v)| Some((f.parse().ok()?, v.parse().ok()?)));
        match parsed {
            Some(stored) => Ok((Some(stored), kv.mod_revision())),
            None => Err(std::io::Error::other(format!("fenced value {key:?} holds {text:?}, not FENCE:VALUE"))),
        }
    }
}

#[async_trait]
impl LeaseLocks for EtcdLocks {
    async fn take(&self, key: &str, lease: Duration) -> std::io::Result<Option<(String, u64)>> {
        let mut client = self.client.clone();
        let ttl = i64::try_from(lease.as_secs() + u64::from(lease.subsec_nanos() > 0)).unwrap_or(i64::MAX).max(1);
        let id = client.lease_grant(ttl, None).await.map_err(io)?.id();
        let lock = self.lock_key(key);
        let create = Txn::new()
            .when([Compare::create_revision(lock.as_str(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(lock.as_str(), id.to_string(), Some(PutOptions::new().with_lease(id)))]);
        let created = client.txn(create).await.map_err(io)?;
        if !created.succeeded() {
            let _ = client.lease_revoke(id).await;
            return Ok(None);
        }
        let fence = created.header().map_or(0, |h| h.revision());
        Ok(Some((id.to_string(), u64::try_from(fence).unwrap_or(0))))
    }

    async fn renew(&self, key: &str, token: &str, _lease: Duration) -> std::io::Result<bool> {
        let mut client = self.client.clone();
        let got = client.get(self.lock_key(key), None).await.map_err(io)?;
        if got.kvs().first().is_none_or(|kv| kv.value() != token.as_bytes()) {
            return Ok(false);
        }
        let Ok(id) = token.parse::<i64>() else { return Ok(false) };
        let (mut keeper, mut responses) = client.lease_keep_alive(id).await.map_err(io)?;
        keeper.keep_alive().await.map_err(io)?;
        let answer = responses.message().await.map_err(io)?;
        Ok(answer.is_some_and(|a| a.ttl() > 0))
    }

    async fn release(&self, _key: &str, token: &str) -> std::io::Result<()> {
        let Ok(id) = token.parse::<i64>() else { return Ok(()) };
        match self.client.clone().lease_revoke(id).await {
            Ok(_) => Ok(()),
            // Lapsed already: nothing of ours is left to free.
            Err(etcd_client::Error::GRpcStatus(status)) if status.message().contains("not found") => Ok(()),
            Err(e) => Err(io(e)),
        }
    }
}

#[async_trait]
impl Fenced for EtcdLocks {
    async fn advance(&self, key: &str, fence: u64, value: i64) -> Result<bool, LockError> {
        check_key(key)?;
        let fail = |source| LockError::Io { key: key.to_owned(), source };
        loop {
            let (stored, revision) = self.current(key).await.map_err(fail)?;
            if stored.is_some_and(|(f, v)| fence < f || value <= v) {
                return Ok(false);
            }
            let name = self.value_key(key);
            let swap = Txn::new()
                .when([Compare::mod_revision(name.as_str(), CompareOp::Equal, revision)])
                .and_then([TxnOp::put(name.as_str(), format!("{fence}:{value}"), None)]);
            if self.client.clone().txn(swap).await.map_err(|e| fail(io(e)))?.succeeded() {
                return Ok(true);
            }
            // Someone wrote in between: read again and decide again.
        }
    }

    async fn read(&self, key: &str) -> Result<Option<i64>, LockError> {
        check_key(key)?;
        let (stored, _) = self.current(key).await.map_err(|source| LockError::Io { key: key.to_owned(), source })?;
        Ok(stored.map(|(_, value)| value))
    }
}
