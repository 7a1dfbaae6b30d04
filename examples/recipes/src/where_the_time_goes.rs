//! Python: `python -m cProfile -s cumtime worker.py`, or py-spy on a Celery worker, to find
//! which tasks take the time. artel's workers keep every task's run times as they go
//! (count, mean, p50, p99, max): `artel stats` prints them for running workers,
//! `--metrics` exports them as Prometheus histograms with the queue wait beside them, and
//! with OpenTelemetry each run is a span of its caller's trace.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use artel::{App, Registry, TaskError};

#[artel::task]
async fn resize(ms: u64) -> Result<(), TaskError> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(())
}

#[artel::task]
async fn thumbnail() -> Result<(), TaskError> {
    Ok(())
}

/// Runs the recipe.
pub fn run() -> anyhow::Result<()> {
    crate::runtime()?.block_on(async {
        artel::logging::init("warn", artel::logging::LogFormat::Text).map_err(anyhow::Error::msg)?;
        let app = App::local(Registry::new().with(resize).with(thumbnail))?;
        let mut calls = Vec::new();
        for n in 0..50 {
            calls.push(resize::delay(&app, if n == 0 { 80 } else { 20 }).await?);
            calls.push(thumbnail::delay(&app).await?);
        }
        for call in calls {
            call.get(Duration::from_secs(10)).await?;
        }
        let stats = app.worker_stats().context("a local app has a worker")?;
        let timings = stats.timings();
        println!("{:<10} {:>5} {:>9} {:>9} {:>9}", "task", "runs", "p50", "p99", "max");
        for (task, timing) in &timings {
            println!("{task:<10} {:>5} {:>9.1?} {:>9.1?} {:>9.1?}", timing.count, timing.p50, timing.p99, timing.max);
        }
        let of = |name: &str| timings.iter().find(|(task, _)| task == name).map(|(_, t)| *t);
        let (resizes, thumbnails) =
            (of("resize").context("resize timed")?, of("thumbnail").context("thumbnail timed")?);
        ensure!(resizes.count == 50 && thumbnails.count == 50, "every run measured");
        ensure!(resizes.p50 >= Duration::from_millis(20) && resizes.max >= Duration::from_millis(80), "{resizes:?}");
        ensure!(thumbnails.p50 < resizes.p50, "the time goes to resize");
        app.shutdown().await;
        Ok(())
    })
}
