//! [`wait`]: block until all, the first, or the first failing of many jobs finish.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::cell::{Signal, Status};
use crate::handle::Handle;

/// When [`wait`] returns (concurrent.futures' `return_when`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// When every job has finished.
    AllCompleted,
    /// When any job finishes.
    FirstCompleted,
    /// When any job fails or panics; like `AllCompleted` if none does.
    FirstException,
}

/// The handles, split by whether they had finished when [`wait`] returned.
pub struct Waited<T> {
    /// Finished handles, in input order.
    pub done: Vec<Handle<T>>,
    /// Unfinished handles, in input order.
    pub not_done: Vec<Handle<T>>,
}

struct Condition {
    signal: Arc<Signal>,
    when: ReturnWhen,
    remaining: usize,
    met: bool,
}

impl Condition {
    fn new<T>(handles: &[Handle<T>], when: ReturnWhen) -> Self {
        let signal = Arc::new(Signal::default());
        for (index, handle) in handles.iter().enumerate() {
            handle.cell.watch(&signal, index);
        }
        Self { signal, when, remaining: handles.len(), met: handles.is_empty() }
    }

    fn record<T>(&mut self, finished: &Handle<T>) {
        self.remaining -= 1;
        self.met = match self.when {
            ReturnWhen::FirstCompleted => true,
            ReturnWhen::FirstException => finished.status() == Status::Failed || self.remaining == 0,
            ReturnWhen::AllCompleted => self.remaining == 0,
        };
    }
}

fn split<T>(handles: Vec<Handle<T>>) -> Waited<T> {
    let (done, not_done) = handles.into_iter().partition(Handle::is_done);
    Waited { done, not_done }
}

/// Waits until `when` is met or `timeout` passes, then splits the handles into done and
/// not done. A timeout is not an error: check `not_done`.
///
/// ```
/// use std::time::Duration;
/// use artel_pool::{Pool, ReturnWhen, wait};
///
/// let pool = Pool::new()?;
/// let quick = pool.submit(async { 1 })?;
/// let slow = pool.submit(async { tokio::time::sleep(Duration::from_secs(60)).await; 2 })?;
/// let waited = pool.runtime().block_on(wait(vec![quick, slow], ReturnWhen::FirstCompleted, None));
/// assert_eq!((waited.done.len(), waited.not_done.len()), (1, 1));
/// waited.not_done.iter().for_each(|h| { h.cancel(); });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn wait<T>(handles: Vec<Handle<T>>, when: ReturnWhen, timeout: Option<Duration>) -> Waited<T> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut condition = Condition::new(&handles, when);
    while !condition.met {
        match condition.signal.pop(deadline).await {
            Some(index) => condition.record(&handles[index]),
            None => break,
        }
    }
    split(handles)
}

/// [`wait`] for sync code: blocks the calling thread.
pub fn wait_blocking<T>(handles: Vec<Handle<T>>, when: ReturnWhen, timeout: Option<Duration>) -> Waited<T> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let mut condition = Condition::new(&handles, when);
    while !condition.met {
        match condition.signal.pop_blocking(deadline) {
            Some(index) => condition.record(&handles[index]),
            None => break,
        }
    }
    split(handles)
}

impl<T> fmt::Debug for Waited<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waited").field("done", &self.done.len()).field("not_done", &self.not_done.len()).finish()
    }
}
