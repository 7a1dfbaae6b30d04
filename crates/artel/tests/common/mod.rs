//! Shared by the integration tests: one app per broker, each with an in-process worker.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::Mutex;

use artel::{App, Registry, WorkerConfig, connect};

pub mod certs;
use artel_broker_tests::ScratchDb;

/// An app with an in-process worker on one broker: (broker name, app, cleanup guard).
pub type BrokerApp = (&'static str, App, Box<dyn Send>);

/// The brokers to run on: memory, a scratch SQLite file, and Redis when it answers
/// (required when `ARTEL_REQUIRE_SERVICES=1`, as `scripts/test` sets).
pub async fn apps(registry: fn() -> Registry, config: fn() -> WorkerConfig) -> Vec<BrokerApp> {
    // Logs go to the test's captured output (shown when it fails), not the terminal.
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let mut apps = vec![("memory", App::local_with(registry(), config()).expect("app"), Box::new(()) as Box<dyn Send>)];
    let db = ScratchDb::new("apps");
    let sqlite = connect(&format!("sqlite://{}?poll_ms=10", db.path().display())).await.expect("sqlite");
    apps.push(("sqlite", App::with_worker(sqlite.backend, registry(), config()).expect("app"), Box::new(db)));
    let postgres_url =
        std::env::var("ARTEL_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("artel_test_{}", uuid::Uuid::new_v4().simple());
    match connect(&format!("{postgres_url}?schema={schema}&poll_ms=50")).await {
        Ok(postgres) => {
            let cleanup = PostgresSchema { url: postgres_url, schema };
            apps.push((
                "postgres",
                App::with_worker(postgres.backend, registry(), config()).expect("app"),
                Box::new(cleanup),
            ));
        }
        Err(e) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("PostgreSQL is required: {e}")
        }
        Err(e) => eprintln!("skipped on postgres: {e}"),
    }
    let redis_url = std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    match connect(&format!("{redis_url}?prefix={prefix}&poll_ms=20")).await {
        Ok(redis) => {
            let cleanup = RedisPrefix(redis.redis.clone());
            apps.push((
                "redis",
                App::with_worker(redis.backend, registry(), config()).expect("app"),
                Box::new(cleanup),
            ));
        }
        Err(e) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => panic!("Redis is required: {e}"),
        Err(e) => eprintln!("skipped on redis: {e}"),
    }
    apps
}

/// Drops the test's PostgreSQL schema at the end.
pub struct PostgresSchema {
    pub url: String,
    pub schema: String,
}

impl Drop for PostgresSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                use artel::postgres::sqlx;
                if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&pool).await;
                }
            })
        })
        .join()
        .ok();
    }
}

/// Removes the test's Redis keys at the end.
pub struct RedisPrefix(pub Option<artel::redis::RedisBroker>);
impl Drop for RedisPrefix {
    fn drop(&mut self) {
        if let Some(broker) = self.0.take() {
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async { broker.delete_namespace().await.ok() })
            })
            .join()
            .ok();
        }
    }
}

static ATTEMPTS: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);

/// Counts one more run under `run` and returns the count; tests give every run a unique
/// id so brokers and tests never share counters.
pub fn attempt(run: &str) -> u32 {
    let mut guard = ATTEMPTS.lock().unwrap_or_else(|e| e.into_inner());
    let n = guard.get_or_insert_with(HashMap::new).entry(run.to_owned()).or_default();
    *n += 1;
    *n
}

/// How many runs `run` has counted.
pub fn attempts(run: &str) -> u32 {
    let guard = ATTEMPTS.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().and_then(|m| m.get(run).copied()).unwrap_or(0)
}
