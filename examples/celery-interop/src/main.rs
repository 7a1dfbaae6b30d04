//! Rust tasks served to, and calling, Python Celery on the same Redis.
//!
//! ```sh
//! # an artel worker on Celery's own Redis layout, serving the `rs` queue
//! cargo run -p celery-interop -- --broker celery+redis://127.0.0.1:6379/0 worker -Q rs
//! # from Python (python/app.py): app.send_task("app.add", (2, 3), queue="rs").get() == 5
//! ```

use std::process::ExitCode;
use std::time::Duration;

use artel::{Context, Registry, TaskError};

/// Adds two integers.
#[artel::task(name = "app.add")]
async fn add(x: i64, y: i64) -> i64 {
    x + y
}

/// Sums a list (a chord body).
#[artel::task(name = "app.tsum")]
async fn tsum(values: Vec<i64>) -> i64 {
    values.iter().sum()
}

/// Fails with a Python-visible `ValueError`.
#[artel::task(name = "app.fail")]
async fn fail(message: String) -> Result<(), TaskError> {
    Err(TaskError::new(artel::TaskErrorKind::Failed, "ValueError", message))
}

/// Asks to be retried until it has run `times` times, then returns the retry count.
#[artel::task(name = "app.flaky", max_retries = 5)]
async fn flaky(ctx: Context, times: u32) -> Result<u32, TaskError> {
    if ctx.retries() + 1 < times {
        return Err(ctx.retry("not yet").after(Duration::from_millis(100)));
    }
    Ok(ctx.retries())
}

fn main() -> ExitCode {
    artel::cli::main(Registry::new().with(add).with(tsum).with(fail).with(flaky))
}
