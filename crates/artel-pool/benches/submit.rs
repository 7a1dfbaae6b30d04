//! Submit+get overhead per job, per flavour, with raw tokio spawn as the floor.
//! Run: `cargo bench -p artel-pool --bench submit`.

use std::sync::Arc;

use artel_pool::Pool;

fn main() {
    divan::main();
}

const JOBS: u32 = 1_000;

fn pool() -> Arc<Pool> {
    Arc::new(Pool::builder().worker_threads(2).threads(2).build().expect("pool"))
}

/// Floor: tokio's own spawn + JoinHandle, 1,000 jobs submitted then awaited.
#[divan::bench(sample_count = 50)]
fn tokio_spawn_batch(bencher: divan::Bencher) {
    let pool = pool();
    bencher.counter(divan::counter::ItemsCount::new(JOBS)).bench(|| {
        pool.runtime().block_on(pool.runtime().spawn(async {
            let handles: Vec<_> = (0..JOBS).map(|i| tokio::spawn(async move { i })).collect();
            for h in handles {
                h.await.expect("joined");
            }
        }))
    });
}

/// artel async pool, 1,000 jobs submitted then awaited, from async code.
#[divan::bench(sample_count = 50)]
fn async_batch(bencher: divan::Bencher) {
    let pool = pool();
    bencher.counter(divan::counter::ItemsCount::new(JOBS)).bench(|| {
        let p = pool.clone();
        pool.runtime().block_on(pool.runtime().spawn(async move {
            let handles: Vec<_> = (0..JOBS).map(|i| p.submit(async move { i }).expect("accepted")).collect();
            for h in handles {
                h.await.expect("value");
            }
        }))
    });
}

/// artel async pool, submit then await each job before the next.
#[divan::bench(sample_count = 50)]
fn async_one_at_a_time(bencher: divan::Bencher) {
    let pool = pool();
    bencher.counter(divan::counter::ItemsCount::new(JOBS)).bench(|| {
        let p = pool.clone();
        pool.runtime().block_on(pool.runtime().spawn(async move {
            for i in 0..JOBS {
                p.submit(async move { i }).expect("accepted").await.expect("value");
            }
        }))
    });
}

/// artel thread pool (2 threads), 1,000 closures submitted then waited on.
#[divan::bench(sample_count = 20)]
fn threads_batch(bencher: divan::Bencher) {
    let pool = pool();
    bencher.counter(divan::counter::ItemsCount::new(JOBS)).bench(|| {
        let handles: Vec<_> = (0..JOBS).map(|i| pool.submit_blocking(move || i).expect("accepted")).collect();
        for h in handles {
            h.wait().expect("value");
        }
    });
}
