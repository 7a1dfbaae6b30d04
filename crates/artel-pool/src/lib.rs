//! Local executors with one futures API, in the spirit of `concurrent.futures` and futurist.
//!
//! A [`Pool`] runs async jobs on tokio tasks ([`Pool::submit`]) and blocking or CPU-bound
//! closures on threads ([`Pool::submit_blocking`]); both give a [`Handle`] that is awaited
//! or waited on from sync code. On top: ordered streaming [`Pool::map`] with a bounded
//! window, [`as_completed`], [`wait`] with [`ReturnWhen`], done-callbacks, a backlog limit
//! that rejects ([`Rejected`]), cancellation, shutdown, and [`Periodic`] calls.
//!
//! Invariants: a panic in a job becomes [`JobError::Panicked`] on its handle and never
//! takes the pool down; every accepted job's handle finishes (with `Cancelled` if the job
//! is dropped unrun); `map` never has more than `window` jobs in flight.
//!
//! Process pools (child processes running the same binary) plug in behind the same
//! [`Handle`] in a later release.
//!
//! ```
//! let pool = artel_pool::Pool::builder().concurrency(100).build()?;
//! let squares: Vec<u64> = pool
//!     .map(1..=5u64, 2, |x| async move { x * x })
//!     .blocking()
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(squares, [1, 4, 9, 16, 25]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod as_completed;
mod builder;
mod catch_unwind;
mod cell;
mod error;
mod executor;
mod handle;
mod live;
mod map;
mod periodic;
mod pool;
mod process;
mod sync;
mod wait;

use std::future::Future;

pub use as_completed::{AsCompleted, BlockingAsCompleted, as_completed};
pub use builder::PoolBuilder;
pub use catch_unwind::{CatchUnwind, catch_unwind, last_panic_location};
pub use cell::Status;
pub use error::{JobError, Rejected};
pub use handle::Handle;
pub use map::{BlockingMap, Map};
pub use periodic::{Periodic, PeriodicBuilder};
pub use pool::{Pool, PoolStats, Shutdown};
pub use process::{Call, Functions, ProcessPool, ProcessPoolBuilder, ProcessPoolStats, serve_if_child};
pub use wait::{ReturnWhen, Waited, wait, wait_blocking};

/// Boxed error of a failed job.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Pool {
    /// Runs async `f` over `items`, yielding results in input order with at most
    /// `window` jobs in flight; the input is read lazily. `f` is called inside the pool's
    /// runtime context, so it may build tokio futures (timers, sockets) directly.
    pub fn map<I, F, Fut>(&self, items: I, window: usize, mut f: F) -> Map<'_, Fut::Output, I::IntoIter>
    where
        I: IntoIterator,
        F: FnMut(I::Item) -> Fut + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        Map::new(
            items.into_iter(),
            window,
            Box::new(move |item| {
                let _context = self.runtime().enter();
                self.submit(f(item))
            }),
        )
    }

    /// [`Pool::map`] for blocking closures, run on the pool's threads.
    pub fn map_blocking<I, F, T>(&self, items: I, window: usize, f: F) -> Map<'_, T, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + Clone + 'static,
        T: Send + 'static,
    {
        Map::new(
            items.into_iter(),
            window,
            Box::new(move |item| {
                let f = f.clone();
                self.submit_blocking(move || f(item))
            }),
        )
    }
}
