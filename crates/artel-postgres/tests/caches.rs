//! The cache suite (artel-broker-tests) on PostgreSQL: values shared by every process that
//! uses the schema, in a schema of its own per test, dropped at the end.

use std::sync::Arc;
use std::time::Duration;

use artel_core::SystemClock;
use artel_postgres::{PostgresBroker, PostgresCache, PostgresConfig};
use support::{Schema, url};

mod support;

async fn scratch() -> Option<(PostgresCache, Schema)> {
    let schema = format!("artel_test_{}", uuid::Uuid::new_v4().simple());
    let config = PostgresConfig { schema: schema.clone(), pool_size: 3, ..PostgresConfig::default() };
    let broker = PostgresBroker::connect_with(&url(), config, Arc::new(SystemClock))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required at {}: {e}", artel_core::redact_url(&url())));
    Some((broker.cache_store(), Schema(schema)))
}

artel_broker_tests::cache_suite!(scratch().await, ttl = Duration::from_millis(200));
