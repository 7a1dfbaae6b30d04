//! Python (Celery):
//! ```python
//! @app.task(autoretry_for=(IOError,), max_retries=3, retry_backoff=True)
//! def fetch(url): ...
//! @app.task(time_limit=0.2)
//! def crawl(): ...
//! add.apply_async((1, 2), priority=9)
//! chain(add.s(2, 2), add.s(4))(); group(add.s(i, i) for i in range(10))(); chord(header)(tsum.s())
//! ```
//! The same with artel's tasks on the embedded SQLite broker (no server; `redis://`,
//! `postgres://`, `amqp://` are one URL away): retries are ETAs held by the broker, not
//! sleeps in a worker; a task over its time limit fails alone with `TimeLimitExceeded`;
//! canvas is Celery's own, so Python and artel workers can share one. Flower's view is
//! `artel dashboard` (here served from the program, and its JSON API read).

use std::sync::Mutex;
use std::time::Duration;

use anyhow::ensure;
use artel::dashboard::{Access, Dashboard, DashboardConfig};
use artel::{App, Context, Registry, ResultError, Signature, TaskError, WorkerConfig, chain, chord, group};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// What `note` was called with, in order.
static NOTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

// --8<-- [start:tasks]
#[artel::task]
async fn add(x: i64, y: i64) -> i64 {
    x + y
}

#[artel::task]
async fn tsum(values: Vec<i64>) -> i64 {
    values.iter().sum()
}

/// Fails with a connection error on its first two runs.
#[artel::task(autoretry, max_retries = 3, retry_backoff_ms = 20)]
async fn fetch(ctx: Context, url: String) -> Result<String, TaskError> {
    match ctx.retries() {
        0 | 1 => Err(TaskError::msg(format!("connection reset fetching {url}"))),
        retries => Ok(format!("{url} fetched after {retries} retries")),
    }
}

#[artel::task(time_limit_ms = 200)]
async fn crawl() -> Result<(), TaskError> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(())
}

#[artel::task]
async fn note(label: String) {
    NOTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(label);
}

fn registry() -> Registry {
    Registry::new().with(add).with(tsum).with(fetch).with(crawl).with(note)
}
// --8<-- [end:tasks]

/// Runs the recipe.
pub fn run() -> anyhow::Result<()> {
    crate::on_scratch_sqlite(|url| async move { queue(&url).await })
}

async fn queue(url: &str) -> anyhow::Result<()> {
    // Published before any worker runs: the urgent call jumps the queue.
    let producer = App::connect(url).await?;
    for label in ["low 1", "low 2", "low 3"] {
        producer.send(note::s(label.to_owned()).into_signature()?.priority(1)).await?;
    }
    producer.send(note::s("urgent".to_owned()).into_signature()?.priority(9)).await?;

    // A worker in this process, one task at a time (`artel worker` runs the same elsewhere),
    // logging only what went wrong: a line per task is `info`.
    artel::logging::init("warn", artel::logging::LogFormat::Text).map_err(anyhow::Error::msg)?;
    let backend = artel::connect(url).await?.backend;
    let config = WorkerConfig { concurrency: 1, prefetch: 1, ..WorkerConfig::default() };
    let app = App::with_worker(backend, registry(), config)?;
    let last = app.send(note::s("after".to_owned()).into_signature()?).await?;
    artel::AsyncResult::<()>::new(last, app.backend()).get(WAIT).await?;
    let noted = NOTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    ensure!(noted.first().map(String::as_str) == Some("urgent"), "priority 9 ran first: {noted:?}");
    println!("priorities: {noted:?}");

    let fetch_call = fetch::delay(&app, "https://example.org".to_owned()).await?;
    let fetched_id = fetch_call.id().to_owned();
    let fetched = fetch_call.get(WAIT).await?;
    ensure!(fetched == "https://example.org fetched after 2 retries", "{fetched}");
    println!("autoretry: {fetched}");

    match crawl::delay(&app).await?.get(WAIT).await {
        Err(ResultError::Task { error, .. }) if error.exc_type() == "TimeLimitExceeded" => {
            println!("time limit: {}", error.message());
        }
        other => anyhow::bail!("crawl should exceed its 200 ms limit: {other:?}"),
    }

    // --8<-- [start:canvas]
    let chained =
        app.send_task(chain([add::s(2, 2).into_signature()?, Signature::new("add").with_args(vec![json!(4)])]));
    let chained = chained.await?.get(WAIT).await?;
    ensure!(chained == json!(8), "add(2, 2) then add(4): {chained}");
    let members = (0..10).map(|i| add::s(i, i).into_signature()).collect::<Result<Vec<_>, _>>()?;
    let doubled = app.send_group(group(members)).await?.get(WAIT).await?;
    ensure!(doubled == (0..10).map(|i| json!(i * 2)).collect::<Vec<_>>(), "{doubled:?}");
    let header = (1..=100).map(|i| add::s(i, 0).into_signature()).collect::<Result<Vec<_>, _>>()?;
    let total = app.send_task(chord(header, Signature::new("tsum"))).await?.get(WAIT).await?;
    ensure!(total == json!(5050), "the chord's body got every result: {total}");
    // --8<-- [end:canvas]
    println!("chain: {chained}; group: {} results; chord over 100: {total}", doubled.len());

    // Flower's view: the dashboard on a loopback port, its JSON API asked for a task.
    let config = DashboardConfig {
        listen: "127.0.0.1:0".parse()?,
        access: Access::Open,
        broker: "sqlite://(scratch)".to_owned(),
        schedules: None,
    };
    let dashboard = Dashboard::bind(app.backend().clone(), config).await.map_err(anyhow::Error::msg)?;
    let address = dashboard.local_addr()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(dashboard.serve(stop.clone()));
    let page: serde_json::Value =
        reqwest::get(format!("http://{address}/api/tasks/{fetched_id}")).await?.error_for_status()?.json().await?;
    stop.cancel();
    serving.await??;
    ensure!(page["result"]["status"] == "SUCCESS", "the dashboard shows the fetch succeeded: {page}");
    println!("dashboard at http://{address}/: task {fetched_id} is {}", page["result"]["status"]);
    app.shutdown().await;
    Ok(())
}
