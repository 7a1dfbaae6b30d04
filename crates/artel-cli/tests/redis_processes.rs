//! Worker processes on Redis: a task on a killed worker completes on another.
//! Skipped with a message when no Redis answers, unless ARTEL_REQUIRE_SERVICES=1.

mod support;

use std::time::{Duration, Instant};

use artel::connect;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_on_a_killed_redis_worker_completes_on_another_after_its_lease() {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let runs = std::env::temp_dir().join(format!("{prefix}.runs")).display().to_string();
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: runs.clone() };
    let base = support::redis_url();
    let url = format!("{base}?prefix={prefix}&lease_ms=1000&poll_ms=50");
    let connection = match connect(&url).await {
        Ok(c) => c,
        Err(e) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => panic!("Redis is required: {e}"),
        Err(e) => return eprintln!("skipped: {e}"),
    };
    support::a_task_on_a_killed_worker_completes_on_another(&connection, &url, &runs).await;
}

#[test]
fn the_cli_lists_dead_letters_queues_and_workers_on_redis() {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: String::new() };
    let url = format!("{}?prefix={prefix}&poll_ms=20", support::redis_url());
    if support::artel(&url, &["queues"]).0 != 0 {
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "Redis is required");
        eprintln!("skipped: no Redis");
        return;
    }
    support::dead_letters_round_trip(&url);
    let worker = support::WorkerProcess::start(&url, &["--enable", "exec", "-c", "1", "-n", "redis-stats@test"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, stats, _) = support::artel(&url, &["stats"]);
        if stats.lines().any(|l| l.starts_with("redis-stats@test") && l.contains("alive")) {
            break;
        }
        assert!(Instant::now() < deadline, "the worker never reported: {stats}");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(worker);
}

#[test]
fn failed_tasks_are_listed_and_run_again_on_redis() {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: String::new() };
    support::failed_tasks_round_trip(&format!("{}?prefix={prefix}&poll_ms=20", support::redis_url()));
}

#[test]
fn the_cli_lists_queues_and_dead_letters_on_celerys_redis_layout() {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: String::new() };
    let celery = support::redis_url().replacen("redis://", "celery+redis://", 1);
    support::dead_letters_round_trip(&format!("{celery}?prefix={prefix}:&poll_ms=20"));
}
