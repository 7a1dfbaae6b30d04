//! The cache suite (artel-broker-tests) on a Redis server: values shared by every process
//! that reaches it, under a test's own key prefix.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use artel_broker_tests::caches;
use artel_cache::Cache;
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

#[tokio::test]
async fn a_redis_value_lives_until_its_ttl() {
    let Some(scratch) = scratch().await else { return };
    caches::a_value_lives_until_its_ttl(&Cache::new(scratch.store.clone()), Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_misses_of_a_redis_cache_compute_once() {
    let Some(scratch) = scratch().await else { return };
    caches::a_hundred_concurrent_misses_compute_once(&Cache::new(scratch.store.clone())).await;
}

#[tokio::test]
async fn a_failed_computation_is_not_kept_in_redis() {
    let Some(scratch) = scratch().await else { return };
    caches::a_failed_computation_is_not_kept_and_the_next_caller_computes(&Cache::new(scratch.store.clone())).await;
}

#[tokio::test]
async fn a_redis_compare_and_set_loses_to_a_write_in_between() {
    let Some(scratch) = scratch().await else { return };
    caches::a_compare_and_set_loses_to_a_write_in_between(&scratch.store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_updating_one_redis_counter_lose_no_increment() {
    let Some(scratch) = scratch().await else { return };
    caches::two_writers_updating_one_counter_lose_no_increment(&Cache::new(scratch.store.clone())).await;
}

#[tokio::test]
async fn a_redis_value_of_another_type_reads_as_a_miss() {
    let Some(scratch) = scratch().await else { return };
    caches::a_value_of_another_type_reads_as_a_miss(&Cache::new(scratch.store.clone())).await;
}
