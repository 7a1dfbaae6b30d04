//! Python (RQ):
//! ```python
//! q = Queue(connection=Redis())
//! job = q.enqueue(count_words, "https://example.org")
//! job.get_status(); job.result
//! registry = FailedJobRegistry(queue=q); for id in registry.get_job_ids(): registry.requeue(id)
//! ```
//! The same with artel on the embedded SQLite file (no Redis to run): a job's state and
//! result by id, failed jobs kept with their error (`artel failed list --since 1h`) and
//! run again by id or all at once (`artel failed retry ID|--all`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use artel::core::failed::FailedFilter;
use artel::{App, AsyncResult, ResultError, State, TaskError, WorkerConfig};

const WAIT: Duration = Duration::from_secs(20);

/// Whether the site `count_words` reads answers.
static SITE_UP: AtomicBool = AtomicBool::new(false);

#[artel::task]
async fn count_words(text: String) -> Result<usize, TaskError> {
    if !SITE_UP.load(Ordering::Relaxed) {
        return Err(TaskError::msg("the site answered 503: try again later"));
    }
    Ok(text.split_whitespace().count())
}

/// Runs the recipe.
pub fn run() -> anyhow::Result<()> {
    crate::on_scratch_sqlite(|url| async move { jobs(&url).await })
}

async fn jobs(url: &str) -> anyhow::Result<()> {
    artel::logging::init("error", artel::logging::LogFormat::Text).map_err(anyhow::Error::msg)?;
    let backend = artel::connect(url).await?.backend;
    let app = App::with_worker(backend, artel::Registry::new().with(count_words), WorkerConfig::default())?;

    let job = count_words::delay(&app, "to be or not to be".to_owned()).await?;
    match job.get(WAIT).await {
        Err(ResultError::Task { error, .. }) => println!("job {} failed: {}", job.id(), error.message()),
        other => anyhow::bail!("the site is down, so the job fails: {other:?}"),
    }
    ensure!(job.state().await? == State::Failure, "its state says so");

    let failed = app.backend().failed().context("sqlite:// keeps failed jobs")?;
    // The failed job is recorded as its message is acknowledged, just after its result
    // is stored: the result can be read a moment before the record.
    let deadline = tokio::time::Instant::now() + WAIT;
    let listed = loop {
        let listed = failed.failed_list(&FailedFilter { limit: 10, ..FailedFilter::default() }).await?;
        if !listed.is_empty() || tokio::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    ensure!(listed.len() == 1 && listed[0].task_id == job.id(), "the failed job is listed: {listed:?}");
    println!("failed list: {} {} {} ({})", listed[0].task_id, listed[0].task, listed[0].args, listed[0].error);

    SITE_UP.store(true, Ordering::Relaxed);
    let requeued = failed.failed_retry(Some(&[job.id().to_owned()])).await?;
    ensure!(requeued == 1, "one job run again");
    let again = AsyncResult::<usize>::new(job.id().to_owned(), app.backend());
    let words = again.get(WAIT).await?;
    ensure!(words == 6, "counted once the site was back: {words}");
    ensure!(failed.failed_list(&FailedFilter { limit: 10, ..FailedFilter::default() }).await?.is_empty(), "none left");
    println!("run again under the same id: {words} words; the failed list is empty");
    app.shutdown().await;
    Ok(())
}
