//! [`Slots`]: how many tasks a worker runs at once, which remote control may change
//! (Celery's `pool_grow` and `pool_shrink`).
//!
//! Invariant: the semaphore's permits, counting those held by running tasks and those a
//! shrink still waits to take back, always equal `size`. A grow adds permits at once; a
//! shrink takes its permits back as running tasks end (FIFO, so a stop that waits for
//! every slot queues behind it and still counts right).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The worker's slots; see the module docs.
#[derive(Debug)]
pub(crate) struct Slots {
    semaphore: Arc<Semaphore>,
    size: AtomicUsize,
}

impl Slots {
    /// `size` slots (at least one).
    pub(crate) fn new(size: usize) -> Self {
        let size = size.max(1);
        Self { semaphore: Arc::new(Semaphore::new(size)), size: AtomicUsize::new(size) }
    }

    /// Tasks run at once now.
    pub(crate) fn size(&self) -> usize {
        self.size.load(Ordering::SeqCst)
    }

    /// A free slot, held until the permit drops.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub(crate) async fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.semaphore.clone().acquire_owned().await.ok()
    }

    /// Waits until every slot is free: nothing runs.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub(crate) async fn all_free(&self) {
        let all = u32::try_from(self.size()).unwrap_or(u32::MAX);
        if let Ok(permits) = self.semaphore.acquire_many(all).await {
            // Taken only to know they were all free.
            drop(permits);
        }
    }

    /// Grows (positive `delta`) or shrinks the slots, never below one; the new size. A
    /// shrink takes effect as running tasks end.
    pub(crate) fn resize(&self, delta: i64) -> usize {
        let mut before = self.size();
        let after = loop {
            let wanted = i64::try_from(before).unwrap_or(i64::MAX).saturating_add(delta).max(1);
            let after = usize::try_from(wanted).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
            match self.size.compare_exchange(before, after, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => break after,
                Err(now) => before = now,
            }
        };
        if after > before {
            self.semaphore.add_permits(after - before);
        } else if after < before {
            let (semaphore, fewer) = (self.semaphore.clone(), u32::try_from(before - after).unwrap_or(u32::MAX));
            let take_back = async move {
                if let Ok(permits) = semaphore.acquire_many_owned(fewer).await {
                    permits.forget();
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(take_back)),
                Err(_) => tracing::warn!("no runtime to shrink the worker's slots on"),
            }
        }
        after
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_grow_frees_slots_at_once_and_a_shrink_takes_them_back_as_tasks_end() {
        let slots = Slots::new(1);
        let running = slots.take().await.expect("a slot");
        let waiting = tokio::time::timeout(Duration::from_millis(50), slots.take()).await;
        assert!(waiting.is_err(), "one slot, taken");
        assert_eq!(slots.resize(2), 3);
        let (second, third) = (slots.take().await.expect("grown"), slots.take().await.expect("grown"));
        assert_eq!(slots.resize(-5), 1, "never below one");
        drop((second, third));
        tokio::task::yield_now().await;
        let none = tokio::time::timeout(Duration::from_millis(50), slots.take()).await;
        assert!(none.is_err(), "the freed slots went back to the shrink, the running task holds the one left");
        drop(running);
        let free = tokio::time::timeout(Duration::from_secs(1), slots.all_free()).await;
        assert!(free.is_ok(), "all one slot free once the task ended");
    }
}
