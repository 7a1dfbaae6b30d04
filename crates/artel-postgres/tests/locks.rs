//! PostgreSQL locks with real processes sharing one schema: mutual exclusion, expiry after
//! a killed holder, growing fences (fenced values and unique keys: the conformance suite).

use std::sync::Arc;
use std::time::Duration;

use artel_broker_tests::locks::{self, Fences, Scratch};
use artel_core::SystemClock;
use artel_postgres::{PostgresBroker, PostgresConfig};
use support::url;

mod support;

const LEASE: Duration = Duration::from_millis(500);

/// The scratch name as a schema name (letters, digits, underscores).
fn schema(name: &str) -> String {
    name.replace('-', "_")
}

async fn broker(name: &str) -> PostgresBroker {
    let config = PostgresConfig { schema: schema(name), ..PostgresConfig::default() };
    PostgresBroker::connect_with(&url(), config, Arc::new(SystemClock))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required at {}: {e}", artel_core::redact_url(&url())))
}

/// Drops the test's schema at the end.
struct Dropped(PostgresBroker);

impl Drop for Dropped {
    fn drop(&mut self) {
        let broker = self.0.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async { broker.delete_namespace().await.ok() })
        })
        .join()
        .ok();
    }
}

/// Not a test: the child role (hammer or hold the lock); run as a test it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_child() {
    let Some(role) = locks::role() else { return };
    locks::play(&role, &broker(&role.name).await.locks(LEASE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_taking_a_postgres_lock_a_thousand_times_each_never_overlap() {
    let scratch = Scratch::new("postgres");
    let broker = broker(&scratch.name).await;
    let _dropped = Dropped(broker.clone());
    locks::two_processes_never_overlap(&scratch, &broker.locks(LEASE), Fences::Counted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_postgres_lock_frees_itself_within_its_lease() {
    let scratch = Scratch::new("postgres");
    let broker = broker(&scratch.name).await;
    let _dropped = Dropped(broker.clone());
    locks::a_killed_holder_frees_the_lock(&scratch, &broker.locks(LEASE), Some(LEASE)).await;
}
