//! The conformance suite against `postgres://`, in a schema of its own per test, dropped
//! at the end.

use std::sync::Arc;
use std::time::Duration;

use artel_broker_tests::{Capabilities, Fixture, Leases, SLOW_POLL, SlowPolling, conformance};
use artel_core::{Broker, SystemClock};
use artel_postgres::{PostgresBroker, PostgresConfig};
use support::{Schema, url};

mod support;

/// Failures kept per queue and task records kept: small, so the suite sees older ones dropped.
const KEPT: u32 = 3;

fn config(schema: &str) -> PostgresConfig {
    PostgresConfig {
        schema: schema.to_owned(),
        poll_interval: Duration::from_millis(50),
        failed_kept: KEPT,
        history_kept: KEPT,
        // Tests run side by side, each opening several brokers: keep under the server's
        // connection limit.
        pool_size: 3,
        ..PostgresConfig::default()
    }
}

async fn postgres() -> Fixture {
    let schema = format!("artel_test_{}", uuid::Uuid::new_v4().simple());
    let broker = match PostgresBroker::connect_with(&url(), config(&schema), Arc::new(SystemClock)).await {
        Ok(broker) => broker,
        Err(e) => panic!("PostgreSQL is required at {}: {e}", artel_core::redact_url(&url())),
    };
    Fixture {
        backend: broker.backend(),
        kept: KEPT,
        prefix: "t-".to_owned(),
        leases: Some(leases(&schema)),
        slow_polling: slow_polling(&schema),
        capabilities: Capabilities::NATIVE,
        cleanup: Box::new(Schema(schema)),
    }
}

/// Other workers on the same schema, with short leases.
fn leases(schema: &str) -> Leases {
    let lease = Duration::from_millis(600);
    let config = PostgresConfig { lease, poll_interval: Duration::from_millis(20), ..config(schema) };
    Leases {
        lease,
        open: Box::new(move || {
            let config = config.clone();
            Box::pin(async move {
                let broker =
                    PostgresBroker::connect_with(&url(), config, Arc::new(SystemClock)).await.expect("connect");
                Arc::new(broker) as Arc<dyn Broker>
            })
        }),
    }
}

/// Another connection that would poll once an hour: wake-ups must come from NOTIFY.
fn slow_polling(schema: &str) -> SlowPolling {
    let config = PostgresConfig { poll_interval: SLOW_POLL, ..config(schema) };
    SlowPolling {
        open: Box::new(move || {
            let config = config.clone();
            Box::pin(async move {
                PostgresBroker::connect_with(&url(), config, Arc::new(SystemClock)).await.expect("connect").backend()
            })
        }),
    }
}

conformance!(postgres().await);
