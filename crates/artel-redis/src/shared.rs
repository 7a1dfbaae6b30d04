//! What a broker's clones share: connections, scripts, settings and clock. A leaf: the
//! broker, its lease store, result backend and admin all build on it.

use std::sync::Arc;
use std::time::Duration;

use artel_core::Clock;
use redis::aio::ConnectionManager;

use crate::keys::QueueKeys;
use crate::scripts::Scripts;

/// Settings of a [`crate::RedisBroker`].
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Prefix of every key, so several apps (or tests) share one server.
    pub prefix: String,
    /// How long a claimed message stays hidden without a heartbeat.
    pub lease: Duration,
    /// Longest an idle consumer blocks before looking again (delayed messages and
    /// lapsed leases are picked up at least this often).
    pub idle_wait: Duration,
    /// How many tasks that failed for good are kept per queue for `artel failed`.
    pub failed_kept: u32,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            prefix: "artel".to_owned(),
            lease: Duration::from_secs(30),
            idle_wait: Duration::from_millis(500),
            failed_kept: artel_core::FAILED_KEPT,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) client: redis::Client,
    /// Multiplexed, reconnecting; never used for blocking commands.
    pub(crate) conn: ConnectionManager,
    pub(crate) scripts: Scripts,
    pub(crate) config: RedisConfig,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Shared {
    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    pub(crate) fn keys(&self, queue: &str) -> QueueKeys {
        QueueKeys::new(&self.config.prefix, queue)
    }
}
