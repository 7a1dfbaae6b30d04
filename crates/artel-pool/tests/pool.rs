//! The pool's futures API, specified by example.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use artel_pool::{JobError, Pool, Rejected, ReturnWhen, Shutdown, Status, as_completed, wait, wait_blocking};
use tokio::time::sleep;

/// A pool on the test's own (paused-clock) runtime, so sleeps are deterministic.
fn pool_here() -> Pool {
    Pool::builder().on_runtime(tokio::runtime::Handle::current()).build().expect("pool")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(start_paused = true)]
async fn submit_returns_the_value() {
    let pool = pool_here();
    let handle = pool.submit(async { 6 * 7 }).expect("accepted");
    assert_eq!(handle.await.expect("value"), 42);
}

#[test]
fn handles_can_be_waited_on_from_sync_code() {
    let pool = Pool::builder().threads(2).build().expect("pool");
    let a = pool.submit(async { "async" }).expect("accepted");
    let b = pool.submit_blocking(|| "blocking").expect("accepted");
    assert_eq!(a.wait().expect("value"), "async");
    assert_eq!(b.wait().expect("value"), "blocking");
}

#[tokio::test(start_paused = true)]
async fn map_yields_in_input_order_whatever_the_finish_order() {
    let pool = pool_here();
    // Later items finish first.
    let mut results = pool.map(0..20u64, 8, |i| async move {
        sleep(ms(100 - i * 5)).await;
        i * 10
    });
    let mut got = Vec::new();
    while let Some(r) = results.next().await {
        got.push(r.expect("value"));
    }
    assert_eq!(got, (0..20).map(|i| i * 10).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn map_never_has_more_than_window_in_flight_and_reads_input_lazily() {
    let pool = pool_here();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let pulled = Arc::new(AtomicUsize::new(0));
    let items = {
        let pulled = pulled.clone();
        (0..1_000u64).inspect(move |_| {
            pulled.fetch_add(1, Ordering::SeqCst);
        })
    };
    let (r, p) = (running.clone(), peak.clone());
    let mut results = pool.map(items, 16, move |i| {
        let (r, p) = (r.clone(), p.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            sleep(ms(1 + i % 7)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            i
        }
    });
    let first = results.next().await.expect("one").expect("value");
    assert_eq!(first, 0);
    assert!(pulled.load(Ordering::SeqCst) <= 16, "input is read at most one window ahead");
    let mut count = 1;
    while let Some(r) = results.next().await {
        r.expect("value");
        count += 1;
        assert!(results.in_flight() <= 16);
    }
    assert_eq!(count, 1_000);
    assert_eq!(peak.load(Ordering::SeqCst), 16, "the window is used fully and never exceeded");
}

#[test]
fn map_from_sync_code_may_build_tokio_futures_directly() {
    let pool = Pool::builder().concurrency(10).build().expect("pool");
    let done: Vec<()> =
        pool.map(0..20, 10, |_| tokio::time::sleep(ms(1))).blocking().collect::<Result<_, _>>().expect("all succeed");
    assert_eq!(done.len(), 20);
}

#[test]
fn blocking_map_is_an_ordered_iterator() {
    let pool = Pool::builder().threads(4).build().expect("pool");
    let out: Vec<u32> = pool
        .map_blocking(0..50u32, 4, |i| {
            std::thread::sleep(Duration::from_micros(u64::from(50 - i) * 20));
            i + 1
        })
        .blocking()
        .collect::<Result<_, _>>()
        .expect("all succeed");
    assert_eq!(out, (1..=50).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn as_completed_yields_in_finish_order_with_input_positions() {
    let pool = pool_here();
    let delays = [30, 10, 20, 5];
    let handles: Vec<_> = delays
        .iter()
        .map(|&d| {
            pool.submit(async move {
                sleep(ms(d)).await;
                d
            })
            .expect("accepted")
        })
        .collect();
    let mut done = as_completed(handles);
    let mut order = Vec::new();
    while let Some((index, result)) = done.next().await {
        order.push((index, result.expect("value")));
    }
    assert_eq!(order, [(3, 5), (1, 10), (2, 20), (0, 30)]);
}

#[test]
fn as_completed_blocking_iterator_yields_every_job_once() {
    let pool = Pool::builder().threads(3).build().expect("pool");
    let handles: Vec<_> = (0..30u64).map(|i| pool.submit_blocking(move || i).expect("accepted")).collect();
    let mut seen: Vec<u64> = as_completed(handles)
        .blocking()
        .map(|(i, r)| {
            assert_eq!(r.expect("value"), i as u64);
            i as u64
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..30).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn wait_all_completed_returns_when_everything_finished() {
    let pool = pool_here();
    let handles: Vec<_> = [10, 20, 30].map(|d| pool.submit(sleep(ms(d))).expect("accepted")).into();
    let waited = wait(handles, ReturnWhen::AllCompleted, None).await;
    assert_eq!((waited.done.len(), waited.not_done.len()), (3, 0));
}

#[tokio::test(start_paused = true)]
async fn wait_first_completed_returns_after_the_first() {
    let pool = pool_here();
    let handles: Vec<_> = [50, 10, 80].map(|d| pool.submit(sleep(ms(d))).expect("accepted")).into();
    let waited = wait(handles, ReturnWhen::FirstCompleted, None).await;
    assert_eq!((waited.done.len(), waited.not_done.len()), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn wait_first_exception_returns_at_the_first_failure() {
    let pool = pool_here();
    let ok = |d| {
        pool.submit_fallible(async move {
            sleep(ms(d)).await;
            Ok::<_, std::io::Error>(d)
        })
        .expect("accepted")
    };
    let failing = pool
        .submit_fallible(async {
            sleep(ms(20)).await;
            Err::<u64, _>(std::io::Error::other("boom"))
        })
        .expect("accepted");
    let waited = wait(vec![ok(10), failing, ok(500)], ReturnWhen::FirstException, None).await;
    assert_eq!((waited.done.len(), waited.not_done.len()), (2, 1));
    let failure = waited.done.into_iter().find(|h| h.status() == Status::Failed).expect("the failed one");
    assert!(matches!(failure.await, Err(JobError::Failed(e)) if e.to_string() == "boom"));
}

#[tokio::test(start_paused = true)]
async fn wait_first_exception_without_failures_waits_for_all() {
    let pool = pool_here();
    let handles: Vec<_> = [10, 20].map(|d| pool.submit(sleep(ms(d))).expect("accepted")).into();
    let waited = wait(handles, ReturnWhen::FirstException, None).await;
    assert_eq!((waited.done.len(), waited.not_done.len()), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn wait_times_out_and_reports_what_is_not_done() {
    let pool = pool_here();
    let handles: Vec<_> = [10, 1_000].map(|d| pool.submit(sleep(ms(d))).expect("accepted")).into();
    let waited = wait(handles, ReturnWhen::AllCompleted, Some(ms(100))).await;
    assert_eq!((waited.done.len(), waited.not_done.len()), (1, 1));
}

#[test]
fn wait_blocking_honours_timeout_and_first_completed() {
    let pool = Pool::builder().threads(2).build().expect("pool");
    let gate = Arc::new(Barrier::new(2));
    let g = gate.clone();
    let slow = pool
        .submit_blocking(move || {
            g.wait();
        })
        .expect("accepted");
    let fast = pool.submit_blocking(|| ()).expect("accepted");
    let waited = wait_blocking(vec![slow, fast], ReturnWhen::FirstCompleted, None);
    assert_eq!(waited.done.len(), 1);
    let waited = wait_blocking(waited.not_done, ReturnWhen::AllCompleted, Some(Duration::from_millis(50)));
    assert_eq!(waited.not_done.len(), 1, "still blocked at the barrier");
    gate.wait();
    let waited = wait_blocking(waited.not_done, ReturnWhen::AllCompleted, None);
    assert_eq!(waited.done.len(), 1);
}

#[test]
fn wait_timeout_on_a_handle_leaves_it_usable() {
    let pool = Pool::builder().threads(1).build().expect("pool");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut handle = pool.submit_blocking(move || rx.recv().map(|_| 7)).expect("accepted");
    assert!(handle.wait_timeout(Duration::from_millis(30)).is_none(), "not finished yet");
    tx.send(()).expect("send");
    let value = handle.wait_timeout(Duration::from_secs(10)).expect("finished").expect("value");
    assert_eq!(value, Ok(7));
}

#[tokio::test(start_paused = true)]
async fn a_full_backlog_rejects_with_a_clear_error() {
    let pool = Pool::builder()
        .on_runtime(tokio::runtime::Handle::current())
        .concurrency(1)
        .max_backlog(2)
        .build()
        .expect("pool");
    let running = pool.submit(sleep(ms(100))).expect("runs");
    tokio::task::yield_now().await; // let it take the only slot
    let queued: Vec<_> = (0..2).map(|_| pool.submit(sleep(ms(1))).expect("waits")).collect();
    let err = pool.submit(async {}).expect_err("backlog is full");
    assert_eq!(err, Rejected::Backlog { limit: 2 });
    assert!(err.to_string().contains("max_backlog"), "{err}");
    running.await.expect("value");
    for h in queued {
        h.await.expect("value");
    }
    pool.submit(async {}).expect("room again").await.expect("value");
    assert_eq!(pool.stats().rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_pending_job_means_it_never_runs() {
    let pool = Pool::builder().on_runtime(tokio::runtime::Handle::current()).concurrency(1).build().expect("pool");
    let ran = Arc::new(AtomicBool::new(false));
    let blocker = pool.submit(sleep(ms(50))).expect("runs");
    tokio::task::yield_now().await;
    let r = ran.clone();
    let pending = pool.submit(async move { r.store(true, Ordering::SeqCst) }).expect("queued");
    assert_eq!(pending.status(), Status::Pending);
    assert!(pending.cancel());
    assert!(matches!(pending.await, Err(JobError::Cancelled)));
    blocker.await.expect("value");
    sleep(ms(100)).await;
    assert!(!ran.load(Ordering::SeqCst), "a cancelled job never runs");
    assert_eq!(pool.stats().cancelled, 1);
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_running_async_job_stops_it() {
    let pool = pool_here();
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let handle = pool
        .submit(async move {
            sleep(ms(1_000)).await;
            f.store(true, Ordering::SeqCst);
        })
        .expect("accepted");
    sleep(ms(10)).await;
    assert_eq!(handle.status(), Status::Running);
    assert!(handle.cancel());
    assert!(matches!(handle.await, Err(JobError::Cancelled)));
    sleep(ms(2_000)).await;
    assert!(!finished.load(Ordering::SeqCst));
}

#[test]
fn a_running_blocking_job_cannot_be_cancelled() {
    let pool = Pool::builder().threads(1).build().expect("pool");
    let started = Arc::new(Barrier::new(2));
    let s = started.clone();
    let handle = pool
        .submit_blocking(move || {
            s.wait();
            std::thread::sleep(Duration::from_millis(20));
            1
        })
        .expect("accepted");
    started.wait();
    assert!(!handle.cancel(), "threads cannot be interrupted");
    assert_eq!(handle.wait().expect("value"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_panic_becomes_an_error_and_the_pool_keeps_working() {
    let pool = pool_here();
    let boom = pool.submit(async { panic!("boom") }).expect("accepted");
    let err = boom.await.map(|_: ()| ()).expect_err("panicked");
    assert!(matches!(&err, JobError::Panicked(m) if m == "boom"), "{err}");
    assert_eq!(pool.submit(async { 1 }).expect("accepted").await.expect("value"), 1);
    assert_eq!(pool.stats().failed, 1);
}

#[test]
fn a_panicking_thread_job_becomes_an_error_too() {
    let pool = Pool::builder().threads(1).build().expect("pool");
    let err =
        pool.submit_blocking(|| -> u8 { panic!("thread boom {}", 7) }).expect("accepted").wait().expect_err("panicked");
    assert!(matches!(&err, JobError::Panicked(m) if m == "thread boom 7"), "{err}");
    assert_eq!(pool.submit_blocking(|| 2).expect("accepted").wait().expect("value"), 2);
}

#[test]
fn shutdown_with_wait_finishes_every_accepted_job() {
    let pool = Pool::builder().threads(2).build().expect("pool");
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let d = done.clone();
        pool.submit_blocking(move || {
            std::thread::sleep(Duration::from_millis(5));
            d.fetch_add(1, Ordering::SeqCst);
        })
        .expect("accepted");
    }
    pool.shutdown(Shutdown::default());
    assert_eq!(done.load(Ordering::SeqCst), 10);
    assert_eq!(pool.submit(async {}).expect_err("closed"), Rejected::ShutDown);
}

#[test]
fn shutdown_without_wait_returns_while_jobs_run() {
    let pool = Pool::builder().threads(1).build().expect("pool");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let handle = pool.submit_blocking(move || rx.recv().is_ok()).expect("accepted");
    pool.shutdown(Shutdown { wait: false, cancel_pending: false });
    assert!(!handle.is_done(), "returned before the job finished");
    tx.send(()).expect("send");
    assert!(handle.wait().expect("value"));
}

#[test]
fn shutdown_can_cancel_pending_jobs() {
    let pool = Pool::builder().threads(1).build().expect("pool");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let running = pool.submit_blocking(move || rx.recv().is_ok()).expect("accepted");
    let pending: Vec<_> = (0..5).map(|_| pool.submit_blocking(|| ()).expect("queued")).collect();
    while running.status() != Status::Running {
        std::thread::yield_now();
    }
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let _ = tx.send(());
    });
    pool.shutdown(Shutdown { wait: true, cancel_pending: true });
    assert!(running.wait().expect("the running job finished"));
    for h in pending {
        assert!(matches!(h.wait(), Err(JobError::Cancelled)));
    }
}

#[test]
fn dropping_the_pool_joins_like_a_with_block() {
    let done = Arc::new(AtomicUsize::new(0));
    {
        let pool = Pool::builder().threads(2).build().expect("pool");
        for _ in 0..4 {
            let d = done.clone();
            pool.submit_blocking(move || {
                std::thread::sleep(Duration::from_millis(10));
                d.fetch_add(1, Ordering::SeqCst);
            })
            .expect("accepted");
        }
    }
    assert_eq!(done.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn done_callbacks_see_the_outcome_even_when_added_late() {
    let pool = pool_here();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handle = pool
        .submit(async {
            sleep(ms(10)).await;
            5
        })
        .expect("accepted");
    let s = seen.clone();
    handle.on_done(move |r| s.lock().expect("lock").push(format!("early {:?}", r.as_ref().ok())));
    sleep(ms(20)).await;
    let s = seen.clone();
    handle.on_done(move |r| s.lock().expect("lock").push(format!("late {:?}", r.as_ref().ok())));
    assert_eq!(*seen.lock().expect("lock"), ["early Some(5)", "late Some(5)"]);
    assert_eq!(handle.await.expect("value"), 5);
}

#[tokio::test(start_paused = true)]
async fn stats_count_every_outcome() {
    let pool = pool_here();
    pool.submit(async { 1 }).expect("ok").await.expect("value");
    let _ = pool.submit_fallible(async { Err::<(), _>("nope") }).expect("ok").await;
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.succeeded, stats.failed, stats.live), (2, 1, 1, 0));
}

/// Regression: two runners could both see the last free slot and each admit a job.
#[test]
fn the_thread_limit_holds_under_many_concurrent_submits() {
    for _ in 0..20 {
        let pool = Pool::builder().threads(1).worker_threads(2).build().expect("pool");
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let (running, peak) = (running.clone(), peak.clone());
                pool.submit_blocking(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_micros(200));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .expect("accepted")
            })
            .collect();
        for h in handles {
            h.wait().expect("ran");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 1, "threads(1) ran more than one job at once");
    }
}

#[test]
fn blocking_jobs_run_on_the_pools_own_threads_inside_its_runtime() {
    let pool = Pool::builder().threads(2).build().expect("pool");
    let names: Vec<_> = (0..20)
        .map(|_| pool.submit_blocking(|| std::thread::current().name().map(str::to_owned)).expect("accepted"))
        .collect();
    for name in names {
        let name = name.wait().expect("ran").expect("a named thread");
        assert!(name.starts_with("artel-pool-"), "ran on {name}");
    }
    let value = pool
        .submit_blocking(|| tokio::runtime::Handle::current().block_on(async { 7 }))
        .expect("accepted")
        .wait()
        .expect("a blocking job can block on async work, as on tokio's blocking threads");
    assert_eq!(value, 7);
}

#[test]
fn a_pending_blocking_job_cancelled_never_runs_and_is_counted() {
    let pool = Pool::builder().threads(1).build().expect("pool");
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let blocker = pool.submit_blocking(move || gate.recv().ok()).expect("runs");
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let pending = pool.submit_blocking(move || r.store(true, Ordering::SeqCst)).expect("queued");
    assert_eq!(pending.status(), Status::Pending);
    assert!(pending.cancel(), "a pending blocking job can be cancelled");
    release.send(()).expect("release the blocker");
    blocker.wait().expect("the blocker ends");
    assert!(matches!(pending.wait(), Err(JobError::Cancelled)));
    pool.shutdown(Shutdown::default());
    assert!(!ran.load(Ordering::SeqCst), "a cancelled job never runs");
    let stats = pool.stats();
    assert_eq!((stats.succeeded, stats.cancelled, stats.live, stats.pending), (1, 1, 0, 0), "{stats:?}");
}
