//! The conformance suite's fixture on a real Redis or Redis Cluster, shared by the test
//! binaries that run the suite.

use std::sync::Arc;
use std::time::Duration;

use artel_broker_tests::{Capabilities, Fixture, Leases, SLOW_POLL, SlowPolling};
use artel_core::{Broker, SystemClock};
use artel_redis::{RedisBroker, RedisConfig};

/// Deletes every key of the test's prefix (on every master of a cluster) when the test
/// ends.
struct DropPrefix {
    url: String,
    prefix: String,
}

impl Drop for DropPrefix {
    fn drop(&mut self) {
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        // Its own runtime on its own thread: the test's runtime may be shutting down.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                let config = RedisConfig { prefix, ..RedisConfig::default() };
                if let Ok(broker) = RedisBroker::connect_with(&url, config, Arc::new(SystemClock)).await {
                    let _ = broker.delete_namespace().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Failures kept per queue and task records kept: small, so the suite sees older ones dropped.
const KEPT: u32 = 3;

/// Other worker processes on the same prefix, with short leases.
fn leases(url: &str, prefix: &str) -> Leases {
    let (url, prefix, lease) = (url.to_owned(), prefix.to_owned(), Duration::from_millis(600));
    Leases {
        lease,
        open: Box::new(move || {
            let config = RedisConfig {
                prefix: prefix.clone(),
                lease,
                idle_wait: Duration::from_millis(20),
                ..RedisConfig::default()
            };
            let url = url.clone();
            Box::pin(async move {
                let broker = RedisBroker::connect_with(&url, config, Arc::new(SystemClock)).await.expect("connect");
                Arc::new(broker) as Arc<dyn Broker>
            })
        }),
    }
}

/// Another connection to the prefix whose idle consumers would block for an hour.
fn slow_polling(url: &str, prefix: &str) -> SlowPolling {
    let (url, prefix) = (url.to_owned(), prefix.to_owned());
    SlowPolling {
        open: Box::new(move || {
            let config = RedisConfig { prefix: prefix.clone(), idle_wait: SLOW_POLL, ..RedisConfig::default() };
            let url = url.clone();
            Box::pin(async move {
                let broker = RedisBroker::connect_with(&url, config, Arc::new(SystemClock)).await.expect("connect");
                broker.backend()
            })
        }),
    }
}

/// The suite's fixture on the Redis (or cluster) at `url`, each test under its own prefix;
/// `None` (skipped) when it is unreachable, unless `ARTEL_REQUIRE_SERVICES=1`.
pub(crate) async fn fixture(url: &str) -> Option<Fixture> {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let config =
        RedisConfig { prefix: prefix.clone(), failed_kept: KEPT, history_kept: KEPT, ..RedisConfig::default() };
    match RedisBroker::connect_with(url, config, Arc::new(SystemClock)).await {
        Ok(broker) => Some(Fixture {
            backend: broker.backend(),
            kept: KEPT,
            prefix: "q-".to_owned(),
            leases: Some(leases(url, &prefix)),
            slow_polling: slow_polling(url, &prefix),
            capabilities: Capabilities::NATIVE,
            cleanup: Box::new(DropPrefix { url: url.to_owned(), prefix }),
        }),
        Err(error) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("Redis is required (ARTEL_REQUIRE_SERVICES=1) but unreachable: {error}")
        }
        Err(error) => {
            eprintln!("skipped: no Redis at {url} ({error}); scripts/test starts one");
            None
        }
    }
}
