//! What every lock backend's cross-process test runs in each process.

use std::path::Path;
use std::time::Duration;

use artel_lock::Locks;

/// Takes the lock on `shared` `rounds` times, each time checking that nobody else is
/// inside (a `create_new` marker in `dir`) and that the fence grew, and counting the
/// turn in `dir/counter`: run from several processes, the counter ends at their total.
pub async fn take_turns(locks: &dyn Locks, dir: &Path, rounds: u64) {
    let mut last = 0;
    for _ in 0..rounds {
        let guard = locks.acquire("shared", Duration::from_secs(30)).await.expect("acquire");
        assert!(guard.fence() > last, "fences grow: {} after {last}", guard.fence());
        last = guard.fence();
        std::fs::OpenOptions::new().write(true).create_new(true).open(dir.join("inside")).expect("alone inside");
        let counter = dir.join("counter");
        let n: u64 = std::fs::read_to_string(&counter).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        std::fs::write(&counter, (n + 1).to_string()).expect("count");
        std::fs::remove_file(dir.join("inside")).expect("leave");
        drop(guard);
    }
}
