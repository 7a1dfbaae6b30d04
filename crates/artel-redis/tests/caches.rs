//! The cache suite (artel-broker-tests) on a Redis server: values shared by every process
//! that reaches it, under a test's own key prefix.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use artel_core::SystemClock;
use artel_redis::{RedisBroker, RedisCache, RedisConfig};

fn url() -> String {
    std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// A store under a prefix of its own, its keys deleted when dropped.
struct Scratch {
    store: RedisCache,
    prefix: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let script = format!(
            "redis-cli -u '{0}' --scan --pattern '{1}:*' | xargs -r redis-cli -u '{0}' del",
            url(),
            self.prefix
        );
        let _ = Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).status();
    }
}

async fn scratch() -> Option<Scratch> {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let config = RedisConfig { prefix: prefix.clone(), ..RedisConfig::default() };
    match RedisBroker::connect_with(&url(), config, Arc::new(SystemClock)).await {
        Ok(broker) => Some(Scratch { store: broker.cache_store(), prefix }),
        Err(error) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("Redis is required (ARTEL_REQUIRE_SERVICES=1) but unreachable: {error}")
        }
        Err(error) => {
            eprintln!("skipped: no Redis at {} ({error})", url());
            None
        }
    }
}

artel_broker_tests::cache_suite!(
    scratch().await.map(|scratch| (scratch.store.clone(), scratch)),
    ttl = Duration::from_millis(200)
);
