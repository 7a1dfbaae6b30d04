//! Counting live jobs so shutdown can wait for them, from sync or async code.
//!
//! Submitters only touch `entered` and runners only touch `exited`, each on its own
//! cache line, so the hot path never contends. A waiter raises `watched` before checking;
//! an exiting job checks `watched` after counting itself, so (both sequentially
//! consistent) one of them always sees the other and no wake-up is lost.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use tokio::sync::Notify;

use crate::executor::Padded;

#[derive(Default)]
pub(crate) struct Live {
    entered: Padded<AtomicUsize>,
    exited: Padded<AtomicUsize>,
    watched: AtomicBool,
    lock: Mutex<()>,
    idle_cond: Condvar,
    idle: Notify,
}

impl Live {
    pub(crate) fn enter(&self) {
        self.entered.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn exit(&self) {
        self.exited.fetch_add(1, Ordering::SeqCst);
        if self.watched.load(Ordering::SeqCst) && self.count() == 0 {
            // Taking the lock orders this wake-up after a blocking waiter's check.
            let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.idle_cond.notify_all();
            self.idle.notify_waiters();
        }
    }

    pub(crate) fn count(&self) -> usize {
        // Read `exited` first: it never passes `entered`, so the difference is never negative.
        let exited = self.exited.load(Ordering::SeqCst);
        self.entered.load(Ordering::SeqCst).saturating_sub(exited)
    }

    pub(crate) fn wait_idle_blocking(&self) {
        self.watched.store(true, Ordering::SeqCst);
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.count() > 0 {
            guard = self.idle_cond.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub(crate) async fn wait_idle(&self) {
        self.watched.store(true, Ordering::SeqCst);
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
