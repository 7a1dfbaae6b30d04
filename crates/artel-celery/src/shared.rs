//! What a connection's clones share: connections, scripts, key names, settings. A leaf:
//! the broker, its lease store, result backend and admin all build on it.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use artel_redis::Conn;

use crate::keys::Names;
use crate::scripts::Scripts;

/// Settings of a [`crate::CeleryRedis`] connection.
#[derive(Debug, Clone)]
pub struct CeleryRedisConfig {
    /// kombu's `global_keyprefix`: prepended to every key and channel.
    pub prefix: String,
    /// kombu's `visibility_timeout`: a message held this long by a consumer that stopped
    /// refreshing it is restored to its queue (Celery's default, one hour).
    pub visibility_timeout: Duration,
    /// How often an idle consumer looks for messages.
    pub poll: Duration,
    /// Certificate files for a `rediss://` URL.
    pub tls: artel_core::TlsFiles,
    /// The sentinels to ask for the master (kombu's `sentinel://`; the URL's host is
    /// then ignored).
    pub sentinel: Option<artel_redis::sentinel::SentinelSet>,
}

impl Default for CeleryRedisConfig {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            visibility_timeout: Duration::from_secs(3600),
            poll: Duration::from_millis(50),
            tls: Default::default(),
            sentinel: None,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) client: redis::Client,
    pub(crate) conn: Conn,
    pub(crate) scripts: Scripts,
    pub(crate) names: Names,
    pub(crate) config: CeleryRedisConfig,
    /// Queues this connection's publishes declared.
    pub(crate) declared: Mutex<HashSet<String>>,
    /// Keeps the connections on the Sentinel-named master, if there is one.
    pub(crate) _follower: Option<artel_redis::sentinel::Follower>,
    /// Where consumers' completions go to be written in batches.
    pub(crate) completions: artel_redis::completer::Completions<crate::lease::Finished>,
}
