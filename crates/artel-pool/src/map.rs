//! [`Map`]: a function over many items, results in input order, bounded in flight.
//!
//! Unlike concurrent.futures' `map` (which submits the whole input at once, bpo-32306),
//! input is pulled lazily: at most `window` jobs exist at any time, so memory does not
//! grow with the input.

use std::collections::VecDeque;
use std::fmt;

use crate::error::{JobError, Rejected};
use crate::handle::Handle;

/// Submits one item's job.
type Submit<'p, Item, T> = Box<dyn FnMut(Item) -> Result<Handle<T>, Rejected> + 'p>;

/// Ordered, windowed results of a function over an iterator; see [`crate::Pool::map`].
pub struct Map<'p, T, I: Iterator> {
    items: I,
    submit: Submit<'p, I::Item, T>,
    window: usize,
    in_flight: VecDeque<Handle<T>>,
}

impl<'p, T, I: Iterator> Map<'p, T, I> {
    pub(crate) fn new(items: I, window: usize, submit: Submit<'p, I::Item, T>) -> Self {
        let window = window.max(1);
        Self { items, submit, window, in_flight: VecDeque::with_capacity(window) }
    }

    fn fill(&mut self) {
        while self.in_flight.len() < self.window {
            let Some(item) = self.items.next() else { break };
            let handle = (self.submit)(item).unwrap_or_else(|rejected| Handle::failed(rejected.into()));
            self.in_flight.push_back(handle);
        }
    }

    /// The next result in input order; `None` when the input is exhausted.
    /// An item the pool refused (backlog full, shut down) yields `Err(JobError::Rejected)`.
    pub async fn next(&mut self) -> Option<Result<T, JobError>> {
        self.fill();
        let handle = self.in_flight.pop_front()?;
        Some(handle.await)
    }

    /// Jobs submitted and not yet returned.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// An `Iterator` that blocks the calling thread for each result.
    pub fn blocking(self) -> BlockingMap<'p, T, I> {
        BlockingMap(self)
    }
}

/// [`Map`] as a blocking `Iterator`.
pub struct BlockingMap<'p, T, I: Iterator>(Map<'p, T, I>);

impl<T, I: Iterator> Iterator for BlockingMap<'_, T, I> {
    type Item = Result<T, JobError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.fill();
        Some(self.0.in_flight.pop_front()?.wait())
    }
}

impl<T, I: Iterator> fmt::Debug for Map<'_, T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map").field("window", &self.window).field("in_flight", &self.in_flight.len()).finish()
    }
}

impl<T, I: Iterator> fmt::Debug for BlockingMap<'_, T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
