//! Counting live jobs so shutdown can wait for them, from sync or async code.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use tokio::sync::Notify;

#[derive(Default)]
pub(crate) struct Live {
    count: AtomicUsize,
    lock: Mutex<()>,
    idle_cond: Condvar,
    idle: Notify,
}

impl Live {
    pub(crate) fn enter(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn exit(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Taking the lock orders this wake-up after a blocking waiter's check.
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.idle_cond.notify_all();
            self.idle.notify_waiters();
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    pub(crate) fn wait_idle_blocking(&self) {
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.count() > 0 {
            guard = self.idle_cond.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub(crate) async fn wait_idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            idle.await;
        }
    }
}
