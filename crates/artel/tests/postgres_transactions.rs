//! Transactional enqueue on `postgres://`: a task sent inside the caller's transaction
//! runs when it commits, and a rolled-back one never runs and leaves nothing behind.

mod common;

use std::time::Duration;

use artel::postgres::sqlx;
use artel::{App, Registry, Signature, State, WorkerConfig, connect, group};
use serde_json::json;

#[artel::task]
async fn ship(order: i64) -> String {
    format!("order {order} shipped")
}

fn url() -> String {
    std::env::var("ARTEL_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_commits_or_rolls_back_with_the_callers_writes() {
    let schema = format!("artel_test_{}", uuid::Uuid::new_v4().simple());
    let _cleanup = common::PostgresSchema { url: url(), schema: schema.clone() };
    let app_url = format!("{}?schema={schema}&poll_ms=50", url());
    let app = match App::connect(&app_url).await {
        Ok(app) => app,
        Err(e) => panic!("PostgreSQL is required: {e}"),
    };
    let worker_backend = connect(&app_url).await.expect("worker connection").backend;
    let worker = App::with_worker(worker_backend, Registry::new().with(ship), WorkerConfig::default()).expect("worker");
    let pool = sqlx::PgPool::connect(&url()).await.expect("the application's own pool");
    sqlx::query(&format!("CREATE TABLE {schema}.orders (id BIGINT PRIMARY KEY)")).execute(&pool).await.expect("table");

    // Rolled back: neither the order nor its task exist.
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query(&format!("INSERT INTO {schema}.orders VALUES (1)")).execute(&mut *tx).await.expect("order 1");
    let outcome = app.send_in(&mut tx, Signature::new("ship").with_args(vec![json!(1)])).await.expect("sent in tx");
    let rolled_back = outcome.task_ids()[0].to_owned();
    tx.rollback().await.expect("rollback");

    // Committed: the order and its task go together, a group too.
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query(&format!("INSERT INTO {schema}.orders VALUES (2)")).execute(&mut *tx).await.expect("order 2");
    let sent = app.send_in(&mut tx, Signature::new("ship").with_args(vec![json!(2)])).await.expect("sent in tx");
    let members = [3, 4].map(|n| Signature::new("ship").with_args(vec![json!(n)]));
    let grouped = app.send_in(&mut tx, group(members)).await.expect("group sent in tx");
    let committed = sent.task_ids()[0].to_owned();
    let queued_before_commit = app.backend().broker().len("celery").await.expect("len");
    assert_eq!(queued_before_commit, 0, "nothing is visible before the commit");
    tx.commit().await.expect("commit");

    let result = artel::AsyncResult::<String>::new(committed, app.backend());
    assert_eq!(result.get(Duration::from_secs(20)).await.expect("ran"), "order 2 shipped");
    for id in grouped.task_ids() {
        let member = artel::AsyncResult::<String>::new(id.to_owned(), app.backend());
        assert!(member.get(Duration::from_secs(20)).await.expect("ran").ends_with("shipped"));
    }
    // The rolled-back task: no message, no result, however long we wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let never = artel::AsyncResult::<String>::new(rolled_back, app.backend());
    assert_eq!(never.state().await.expect("state"), State::Pending);
    let rows: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.messages")).fetch_one(&pool).await.expect("count");
    assert_eq!(rows, 0, "nothing left in the tables");
    let orders: Vec<i64> =
        sqlx::query_scalar(&format!("SELECT id FROM {schema}.orders")).fetch_all(&pool).await.expect("orders");
    assert_eq!(orders, vec![2]);

    // Elsewhere than PostgreSQL, send_in says what it needs.
    let memory = App::new(artel::core::memory::backend());
    let mut tx = pool.begin().await.expect("begin");
    let refused = memory.send_in(&mut tx, Signature::new("ship")).await.expect_err("not postgres");
    assert!(refused.to_string().contains("needs the PostgreSQL broker"), "{refused}");
    worker.shutdown().await;
}
