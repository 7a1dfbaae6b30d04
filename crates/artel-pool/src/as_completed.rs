//! [`as_completed`]: results in the order jobs finish.

use std::fmt;
use std::sync::Arc;

use crate::cell::Signal;
use crate::error::JobError;
use crate::handle::Handle;

/// Yields `(index, result)` for each handle as it finishes; see [`as_completed`].
pub struct AsCompleted<T> {
    handles: Vec<Option<Handle<T>>>,
    signal: Arc<Signal>,
    remaining: usize,
}

/// Watches `handles` and yields each one's result as soon as it finishes, with its
/// position in the input (handles already finished come first).
///
/// ```
/// use std::time::Duration;
///
/// let pool = artel_pool::Pool::new()?;
/// let handles = [30u64, 10, 20]
///     .map(|ms| pool.submit(async move { tokio::time::sleep(Duration::from_millis(ms)).await; ms }))
///     .into_iter()
///     .collect::<Result<Vec<_>, _>>()?;
/// let order: Vec<usize> = artel_pool::as_completed(handles).blocking().map(|(index, _)| index).collect();
/// assert_eq!(order, [1, 2, 0], "the 10 ms job first");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn as_completed<T>(handles: impl IntoIterator<Item = Handle<T>>) -> AsCompleted<T> {
    let handles: Vec<Option<Handle<T>>> = handles.into_iter().map(Some).collect();
    let signal = Arc::new(Signal::default());
    for (index, handle) in handles.iter().enumerate() {
        if let Some(handle) = handle {
            handle.cell.watch(&signal, index);
        }
    }
    let remaining = handles.len();
    AsCompleted { handles, signal, remaining }
}

impl<T> AsCompleted<T> {
    fn take(&mut self, index: usize) -> (usize, Result<T, JobError>) {
        self.remaining -= 1;
        let outcome = self.handles[index].take().and_then(|h| h.cell.try_take());
        (index, outcome.unwrap_or(Err(JobError::Cancelled)))
    }

    /// The next finished job; `None` when all have been yielded.
    pub async fn next(&mut self) -> Option<(usize, Result<T, JobError>)> {
        if self.remaining == 0 {
            return None;
        }
        let index = self.signal.pop(None).await?;
        Some(self.take(index))
    }

    /// Jobs not yet yielded.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// An `Iterator` that blocks the calling thread until each next job finishes.
    pub fn blocking(self) -> BlockingAsCompleted<T> {
        BlockingAsCompleted(self)
    }
}

/// [`AsCompleted`] as a blocking `Iterator`.
pub struct BlockingAsCompleted<T>(AsCompleted<T>);

impl<T> Iterator for BlockingAsCompleted<T> {
    type Item = (usize, Result<T, JobError>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.remaining == 0 {
            return None;
        }
        let index = self.0.signal.pop_blocking(None)?;
        Some(self.0.take(index))
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted").field("remaining", &self.remaining).finish()
    }
}

impl<T> fmt::Debug for BlockingAsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
