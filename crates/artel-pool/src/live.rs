//! Counting live jobs so shutdown can wait for them, from sync or async code.
//!
//! Submitters only touch `entered` and runners only touch `exited`, each on its own
//! cache line, so the hot path never contends. A waiter raises `watched`, then reads
//! `exited` by a read-modify-write; an exiting job counts itself (also a
//! read-modify-write), then reads `watched`. The two writes to `exited` are ordered, so
//! either the exit sees `watched` or the waiter sees the exit: no wake-up is lost (a
//! plain load in the waiter relies on sequential consistency alone, which loom cannot
//! check; see the model below).

use tokio::sync::Notify;

use crate::executor::Padded;
use crate::sync::{AtomicBool, AtomicUsize, Condvar, Mutex, Ordering};

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

    /// [`Live::count`] as a waiter reads it: `exited` by a read-modify-write, which sees
    /// the latest exit (see the module docs).
    fn count_for_waiter(&self) -> usize {
        let exited = self.exited.fetch_add(0, Ordering::SeqCst);
        self.entered.load(Ordering::SeqCst).saturating_sub(exited)
    }

    pub(crate) fn wait_idle_blocking(&self) {
        self.watched.store(true, Ordering::SeqCst);
        let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.count_for_waiter() > 0 {
            guard = self.idle_cond.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }

    pub(crate) async fn wait_idle(&self) {
        self.watched.store(true, Ordering::SeqCst);
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.count_for_waiter() == 0 {
                return;
            }
            idle.await;
        }
    }
}

/// Every interleaving of jobs exiting while shutdown waits (`--cfg artel_loom`).
#[cfg(all(test, artel_loom))]
mod loom_models {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_blocking_waiter_wakes_when_the_last_job_exits_whenever_it_started_waiting() {
        loom::model(|| {
            let live = Arc::new(Live::default());
            live.enter();
            live.enter();
            let exits: Vec<_> = (0..2)
                .map(|_| {
                    let live = live.clone();
                    loom::thread::spawn(move || live.exit())
                })
                .collect();
            // loom reports a deadlock if an exit's wake-up could be missed.
            live.wait_idle_blocking();
            assert_eq!(live.count(), 0);
            for exit in exits {
                exit.join().expect("exit");
            }
        });
    }
}
