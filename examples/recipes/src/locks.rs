//! Python:
//! ```python
//! lock = threading.Lock()                              # threads of one process
//! with fasteners.InterProcessLock("/tmp/counter.lock"): # processes of one machine
//!     n = int(open(path).read()); open(path, "w").write(str(n + 1))
//! with etcd3.client().lock("counter", ttl=10): ...       # machines
//! ```
//! artel's locks have one API whatever holds them: [`FileLocks`] (`flock`, released by the
//! kernel when a holder dies), [`LocalLocks`] (this process), the broker's (Redis,
//! SQLite, PostgreSQL; `Backend::locks`) and etcd's ([`EtcdLocks`], used here when
//! `ARTEL_ETCD_URL` names one). Each acquisition has a timeout and a fencing token that
//! grows, so a store can refuse a late write from a holder that stalled and lost its lock.

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use artel::etcd::EtcdLocks;
use artel::lock::{FileLocks, LocalLocks, LockError, Locks};

/// Adds one to the number in `path`, reading and writing it.
fn increment(path: &std::path::Path) -> anyhow::Result<()> {
    let n: u64 = std::fs::read_to_string(path).unwrap_or_default().trim().parse().unwrap_or(0);
    std::thread::yield_now();
    std::fs::write(path, (n + 1).to_string())?;
    Ok(())
}

/// Runs the recipe.
pub fn run() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("artel-recipe-locks-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let outcome = counted_under_locks(&dir);
    std::fs::remove_dir_all(&dir)?;
    outcome
}

fn counted_under_locks(dir: &std::path::Path) -> anyhow::Result<()> {
    let runtime = crate::runtime()?;
    let files: Arc<dyn Locks> = Arc::new(FileLocks::new(dir.join("locks")));
    let fences = runtime.block_on(count(files, &dir.join("counter"), 8, 25))?;
    println!(
        "8 writers, 25 read-modify-writes each under a file lock: 200, fences 1..={}",
        fences.last().copied().unwrap_or(0)
    );
    // The same across machines with etcd's locks, when one runs (`ARTEL_ETCD_URL`).
    if let Ok(url) = std::env::var("ARTEL_ETCD_URL") {
        let prefix = format!("artel-recipe-{}", uuid::Uuid::new_v4().simple());
        let etcd: Arc<dyn Locks> =
            Arc::new(runtime.block_on(EtcdLocks::connect(&[&url], &prefix))?.locks(Duration::from_secs(10)));
        runtime.block_on(count(etcd, &dir.join("etcd-counter"), 4, 10))?;
        println!("the same on etcd at {url}: 4 writers x 10, 40, each with its own fence");
    }

    // Held elsewhere: a bounded wait, and an error that says what happened.
    let local = LocalLocks::new();
    let refused = runtime.block_on(async {
        let _held = local.acquire("report", Duration::ZERO).await?;
        anyhow::Ok(local.acquire("report", Duration::from_millis(50)).await)
    })?;
    ensure!(matches!(refused, Err(LockError::Timeout { .. })), "a held lock times out: {refused:?}");
    println!("{}", refused.err().map(|e| e.to_string()).unwrap_or_default());
    Ok(())
}

/// `writers` tasks each adding one to the number in `counter` `each` times, under the lock
/// `counter` of `locks`; checks the total and that every acquisition had its own fencing
/// token, and returns the tokens in order.
async fn count(
    locks: Arc<dyn Locks>,
    counter: &std::path::Path,
    writers: usize,
    each: usize,
) -> anyhow::Result<Vec<u64>> {
    let tasks = (0..writers).map(|_| {
        let (locks, counter) = (locks.clone(), counter.to_owned());
        tokio::spawn(async move {
            // --8<-- [start:lock]
            let mut fences = Vec::new();
            for _ in 0..each {
                let guard = locks.acquire("counter", Duration::from_secs(10)).await?;
                fences.push(guard.fence());
                tokio::task::block_in_place(|| increment(&counter))?;
            }
            // --8<-- [end:lock]
            anyhow::Ok(fences)
        })
    });
    let mut fences = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        fences.extend(task.await??);
    }
    let total: usize = std::fs::read_to_string(counter)?.trim().parse()?;
    ensure!(total == writers * each, "{writers} writers x {each} increments under the lock: {total}");
    fences.sort_unstable();
    fences.dedup();
    ensure!(fences.len() == total, "every acquisition had its own fencing token");
    Ok(fences)
}
