//! The conformance suite against a real Redis, each test under its own key prefix.
//!
//! `ARTEL_REDIS_URL` picks the server (default `redis://127.0.0.1:6379/0`). Without a
//! server the tests are skipped with a message, unless `ARTEL_REQUIRE_SERVICES=1`
//! (set by `scripts/test`), which makes a missing server a failure.

use std::sync::Arc;
use std::time::Duration;

use artel_broker_tests::{Capabilities, Fixture, Leases, SLOW_POLL, SlowPolling, conformance};
use artel_core::{Broker, SystemClock};
use artel_redis::{RedisBroker, RedisConfig};

fn url() -> String {
    std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// Deletes every key of the test's prefix when the test ends.
struct DropPrefix {
    url: String,
    prefix: String,
}

impl Drop for DropPrefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else { return };
        let Ok(mut conn) = client.get_connection() else { return };
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}:*", self.prefix)).query(&mut conn).unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// Failures kept per queue and task records kept: small, so the suite sees older ones dropped.
const KEPT: u32 = 3;

/// Other worker processes on the same prefix, with short leases.
fn leases(prefix: &str) -> Leases {
    let (prefix, lease) = (prefix.to_owned(), Duration::from_millis(600));
    Leases {
        lease,
        open: Box::new(move || {
            let config = RedisConfig {
                prefix: prefix.clone(),
                lease,
                idle_wait: Duration::from_millis(20),
                ..RedisConfig::default()
            };
            Box::pin(async move {
                let broker = RedisBroker::connect_with(&url(), config, Arc::new(SystemClock)).await.expect("connect");
                Arc::new(broker) as Arc<dyn Broker>
            })
        }),
    }
}

/// Another connection to the prefix whose idle consumers would block for an hour.
fn slow_polling(prefix: &str) -> SlowPolling {
    let prefix = prefix.to_owned();
    SlowPolling {
        open: Box::new(move || {
            let config = RedisConfig { prefix: prefix.clone(), idle_wait: SLOW_POLL, ..RedisConfig::default() };
            Box::pin(async move {
                let broker = RedisBroker::connect_with(&url(), config, Arc::new(SystemClock)).await.expect("connect");
                broker.backend()
            })
        }),
    }
}

async fn redis_fixture() -> Option<Fixture> {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let config =
        RedisConfig { prefix: prefix.clone(), failed_kept: KEPT, history_kept: KEPT, ..RedisConfig::default() };
    match RedisBroker::connect_with(&url(), config, Arc::new(SystemClock)).await {
        Ok(broker) => Some(Fixture {
            backend: broker.backend(),
            kept: KEPT,
            prefix: "q-".to_owned(),
            leases: Some(leases(&prefix)),
            slow_polling: slow_polling(&prefix),
            capabilities: Capabilities::NATIVE,
            cleanup: Box::new(DropPrefix { url: url(), prefix }),
        }),
        Err(error) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("Redis is required (ARTEL_REQUIRE_SERVICES=1) but unreachable: {error}")
        }
        Err(error) => {
            eprintln!("skipped: no Redis at {} ({error}); set ARTEL_REDIS_URL or start redis-server", url());
            None
        }
    }
}

conformance!(match redis_fixture().await {
    Some(fixture) => fixture,
    None => return,
});
