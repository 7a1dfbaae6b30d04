//! The locks and atomics of the modules whose concurrency loom checks (`cell`, `live`,
//! `executor`): std's, or loom's when built with `RUSTFLAGS="--cfg artel_loom"` (then
//! only the loom models may run: see `scripts/test`).

#[cfg(artel_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
#[cfg(artel_loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(artel_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
#[cfg(not(artel_loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
