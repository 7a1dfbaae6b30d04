//! [`MemcachedCache`]: a cache shared through memcached (the store pymemcache users
//! share), on its meta protocol: `mg <key> v c` reads a value with its CAS id,
//! `ms <key> <len> T<ttl> c` writes one and returns the new id, `C<id>` makes the write
//! conditional (`EX` when another write came first) and `ME` (add mode) writes only where
//! there is no value. Times to live are whole seconds, memcached's unit, rounded up.
//!
//! One connection, used by one call at a time and opened again after an error, so calls
//! after a memcached restart reach the new server. Keys are `{prefix}:{key}`; memcached
//! takes at most 250 bytes and no spaces or control characters, and refuses others.

use std::sync::Arc;
use std::time::Duration;

use artel_cache::{CacheError, CacheStore, Entry, Version};
use async_memcached::{Client, Error, MetaProtocol, Status};
use async_trait::async_trait;
use tokio::sync::Mutex;

/// The longest key memcached takes.
const MAX_KEY: usize = 250;

/// A cache on one memcached server, its keys under a prefix; cheap to clone (clones
/// share the connection).
#[derive(Clone)]
pub struct MemcachedCache {
    address: String,
    prefix: String,
    client: Arc<Mutex<Option<Client>>>,
}

impl std::fmt::Debug for MemcachedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedCache").field("address", &self.address).field("prefix", &self.prefix).finish()
    }
}

/// What a write asks of memcached.
enum Write {
    Always,
    IfAbsent,
    IfVersion(Version),
}

impl MemcachedCache {
    /// A cache on the memcached at `address` (`host:port`), its keys under `prefix`;
    /// fails when the server does not answer.
    pub async fn connect(address: &str, prefix: &str) -> Result<Self, CacheError> {
        let cache = Self { address: address.to_owned(), prefix: prefix.to_owned(), client: Arc::new(Mutex::new(None)) };
        let mut slot = cache.client.lock().await;
        cache.client(&mut slot).await?;
        drop(slot);
        Ok(cache)
    }

    /// The connection, opened if there is none.
    async fn client<'a>(&self, slot: &'a mut Option<Client>) -> Result<&'a mut Client, CacheError> {
        if slot.is_none() {
            let client = Client::new(format!("tcp://{}", self.address))
                .await
                .map_err(|e| CacheError::Unavailable(format!("memcached at {}: {e}", self.address)))?;
            *slot = Some(client);
        }
        slot.as_mut().ok_or_else(|| CacheError::Unavailable(format!("memcached at {}", self.address)))
    }

    fn key(&self, key: &str) -> Result<String, CacheError> {
        let full = format!("{}:{key}", self.prefix);
        if full.len() > MAX_KEY || full.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            let why = format!("memcached keys take at most {MAX_KEY} bytes and no spaces or control characters");
            return Err(CacheError::Unavailable(format!("key {key:?}: {why}")));
        }
        Ok(full)
    }

    /// Keeps the connection after a refused operation; drops it after a broken one.
    fn failed(&self, slot: &mut Option<Client>, error: Error) -> CacheError {
        if !matches!(error, Error::Protocol(_)) {
            *slot = None;
        }
        CacheError::Unavailable(format!("memcached at {}: {error}", self.address))
    }

    async fn write(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        write: Write,
    ) -> Result<Option<Version>, CacheError> {
        let key = self.key(key)?;
        // Whole seconds, rounded up: 0 would mean "never expires".
        let ttl = ttl.map_or(0, |ttl| ttl.as_secs().saturating_add(u64::from(ttl.subsec_nanos() > 0)).max(1));
        let mut flags = vec![format!("T{ttl}"), "c".to_owned()];
        match write {
            Write::Always => {}
            Write::IfAbsent => flags.push("ME".to_owned()),
            Write::IfVersion(version) => flags.push(format!("C{version}")),
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let mut slot = self.client.lock().await;
        let client = self.client(&mut slot).await?;
        match client.meta_set(&key, value.as_slice(), false, None, Some(&flags)).await {
            // With flags asked for, the outcome comes back as the value's status.
            Ok(Some(stored)) if matches!(stored.status, Some(Status::Stored) | None) => {
                Ok(Some(stored.cas.unwrap_or_default()))
            }
            Ok(None) => Ok(Some(0)),
            Ok(Some(_)) | Err(Error::Protocol(Status::Exists | Status::NotStored | Status::NotFound)) => Ok(None),
            Err(error) => Err(self.failed(&mut slot, error)),
        }
    }
}

#[async_trait]
impl CacheStore for MemcachedCache {
    async fn get(&self, key: &str) -> Result<Option<Entry>, CacheError> {
        let key = self.key(key)?;
        let mut slot = self.client.lock().await;
        let client = self.client(&mut slot).await?;
        match client.meta_get(&key, false, None, Some(&["v", "c"])).await {
            Ok(found) => Ok(found.and_then(|found| {
                let version = found.cas?;
                Some(Entry { value: found.data.unwrap_or_default(), version })
            })),
            Err(Error::Protocol(Status::NotFound)) => Ok(None),
            Err(error) => Err(self.failed(&mut slot, error)),
        }
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<Version, CacheError> {
        let version = self.write(key, value, ttl, Write::Always).await?;
        version.ok_or_else(|| CacheError::Unavailable(format!("memcached at {} did not store {key:?}", self.address)))
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let key = self.key(key)?;
        let mut slot = self.client.lock().await;
        let client = self.client(&mut slot).await?;
        match client.meta_delete(&key, false, None, None).await {
            Ok(deleted) => Ok(deleted.is_none_or(|deleted| deleted.status != Some(Status::NotFound))),
            Err(Error::Protocol(Status::NotFound)) => Ok(false),
            Err(error) => Err(self.failed(&mut slot, error)),
        }
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expected: Option<Version>,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<Option<Version>, CacheError> {
        let write = expected.map_or(Write::IfAbsent, Write::IfVersion);
        self.write(key, value, ttl, write).await
    }

    async fn clear(&self, prefix: &str) -> Result<u64, CacheError> {
        Err(CacheError::Unsupported(format!(
            "memcached cannot list its keys, so keys under {prefix:?} cannot be cleared: let them expire, or delete them one by one"
        )))
    }
}
