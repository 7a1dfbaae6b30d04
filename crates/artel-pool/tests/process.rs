//! The process pool with real child processes: each child is this test binary started
//! again to run `child_entry`, which serves the functions below.

use std::collections::HashSet;
use std::time::Duration;

use artel_pool::{Call, Functions, JobError, ProcessPool, ProcessPoolBuilder, serve_if_child};
use serde_json::{Value, json};

fn functions() -> Functions {
    Functions::new()
        .register("square", |n: Value| n.as_i64().map(|n| json!(n * n)).ok_or_else(|| format!("not a number: {n}")))
        .register("pid", |_| Ok(json!(std::process::id())))
        .register("fail", |_| Err("nope".to_owned()))
        .register("abort", |_| std::process::abort())
        .register("spin", |_| {
            loop {
                std::hint::spin_loop();
            }
        })
        .register("grow", |mib: Value| {
            let bytes = mib.as_u64().unwrap_or(0) as usize * 1024 * 1024;
            // Held for the child's life: its resident memory stays up after the call.
            Box::leak(vec![1u8; bytes].into_boxed_slice());
            Ok(json!(bytes))
        })
}

/// Not a test: the child role. Started with the pool's environment it serves and exits;
/// run as a test it returns at once.
#[test]
fn child_entry() {
    serve_if_child(&functions());
}

fn pool() -> ProcessPoolBuilder {
    let exe = std::env::current_exe().expect("test binary");
    ProcessPool::builder().program(exe, ["child_entry", "--exact", "--quiet", "--test-threads=1"]).processes(1)
}

fn pid(pool: &ProcessPool) -> u64 {
    pool.submit("pid", json!(null)).expect("accepted").wait().expect("a pid").as_u64().expect("a number")
}

#[test]
fn calls_run_in_a_child_and_a_function_error_fails_only_its_call() {
    let pool = pool().processes(2).build().expect("pool");
    assert_eq!(pool.submit("square", json!(7)).expect("accepted").wait().expect("value"), json!(49));
    assert_ne!(pid(&pool), u64::from(std::process::id()), "not this process");
    let err = pool.submit("fail", json!(null)).expect("accepted").wait().expect_err("fails");
    assert!(matches!(&err, JobError::Failed(e) if e.to_string() == "nope"), "{err}");
    let err = pool.submit("missing", json!(null)).expect("accepted").wait().expect_err("unknown");
    assert!(err.to_string().contains("NotRegistered"), "{err}");
    assert_eq!(pool.submit("square", json!(3)).expect("accepted").wait().expect("still serving"), json!(9));
}

#[test]
fn a_child_that_aborts_fails_only_its_call_with_worker_lost_and_is_replaced() {
    let pool = pool().build().expect("pool");
    let before = pid(&pool);
    let err = pool.submit("abort", json!(null)).expect("accepted").wait().expect_err("lost");
    assert!(matches!(&err, JobError::WorkerLost(why) if why.contains("SIGABRT")), "{err}");
    let after = pid(&pool);
    assert_ne!(before, after, "a fresh child serves the next call");
    let stats = pool.stats();
    assert_eq!((stats.lost, stats.started), (1, 2), "{stats:?}");
}

#[test]
fn a_runaway_call_is_killed_at_its_time_limit_and_its_child_is_gone() {
    let pool = pool().kill_grace(Duration::from_millis(200)).build().expect("pool");
    let runaway = pid(&pool);
    let call = Call::new("spin", json!(null)).time_limit(Duration::from_millis(300));
    let err = pool.submit_call(call).expect("accepted").wait().expect_err("killed");
    assert!(matches!(err, JobError::TimedOut(limit) if limit == Duration::from_millis(300)), "{err}");
    assert!(!std::path::Path::new(&format!("/proc/{runaway}")).exists(), "the spinning child {runaway} is gone");
    assert_ne!(pid(&pool), runaway);
    assert_eq!(pool.stats().killed, 1);
}

#[test]
fn max_tasks_per_child_replaces_a_child_after_its_share() {
    let pool = pool().max_tasks_per_child(3).build().expect("pool");
    let pids: Vec<u64> = (0..9).map(|_| pid(&pool)).collect();
    let distinct: HashSet<u64> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "{pids:?}");
    assert_eq!(pids[0], pids[2], "three calls per child");
}

#[test]
fn max_memory_per_child_replaces_a_child_that_grew_past_it() {
    let pool = pool().max_memory_per_child(64 << 20).build().expect("pool");
    let small = pid(&pool);
    assert_eq!(pid(&pool), small, "under the limit: kept");
    pool.submit("grow", json!(100)).expect("accepted").wait().expect("grew");
    assert_ne!(pid(&pool), small, "past the limit after its call: replaced");
    assert_eq!(pool.stats().recycled, 1);
}

#[test]
fn map_over_children_returns_results_in_input_order() {
    let pool = pool().processes(2).build().expect("pool");
    let results: Vec<Value> =
        pool.map("square", (0..20).map(|n| json!(n)), 3).blocking().map(|r| r.expect("value")).collect();
    assert_eq!(results, (0..20).map(|n| json!(n * n)).collect::<Vec<_>>());
}

#[test]
fn cancelling_a_running_call_kills_its_child() {
    let pool = pool().build().expect("pool");
    let running = pid(&pool);
    let handle = pool.submit("spin", json!(null)).expect("accepted");
    std::thread::sleep(Duration::from_millis(200));
    assert!(handle.cancel(), "a running call can be cancelled");
    assert!(matches!(handle.wait(), Err(JobError::Cancelled)));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{running}/stat")).exists()
        && !std::fs::read_to_string(format!("/proc/{running}/stat")).is_ok_and(|s| s.contains(") Z "))
    {
        assert!(std::time::Instant::now() < deadline, "child {running} still runs after the cancel");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_pool_grows_and_shrinks_and_a_full_backlog_rejects() {
    let pool = pool().max_backlog(1).build().expect("pool");
    assert_eq!(pool.size(), 1);
    let first = pid(&pool);
    assert_eq!(pool.pids(), vec![first as u32]);
    let busy = pool.submit_call(Call::new("spin", json!(null)).time_limit(Duration::from_millis(600))).expect("runs");
    std::thread::sleep(Duration::from_millis(100));
    let queued = pool.submit("square", json!(2)).expect("one may wait");
    let refused = pool.submit("square", json!(3)).expect_err("the backlog is full");
    assert!(matches!(refused, artel_pool::Rejected::Backlog { limit: 1 }), "{refused}");
    assert_eq!(pool.resize(1), 2, "grown");
    assert_eq!(queued.wait().expect("ran on the new child"), json!(4));
    assert_eq!(pool.pids().len(), 2, "{:?}", pool.pids());
    assert_eq!(pool.resize(-5), 1, "never below one");
    drop(busy.wait());
}

#[test]
fn calls_batched_behind_a_crash_run_on_the_next_child() {
    let pool = pool().build().expect("pool");
    pid(&pool); // a child is up, so the calls below go to it together
    let calls = [json!(["square", 2]), json!(["abort", 0]), json!(["square", 3]), json!(["square", 4])];
    let handles: Vec<_> = calls
        .iter()
        .map(|call| pool.submit(call[0].as_str().expect("name"), call[1].clone()).expect("accepted"))
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.wait()).collect();
    assert_eq!(outcomes[0].as_ref().expect("ran before the crash"), &json!(4));
    assert!(matches!(&outcomes[1], Err(JobError::WorkerLost(_))), "{:?}", outcomes[1]);
    assert_eq!(outcomes[2].as_ref().expect("ran on the next child"), &json!(9));
    assert_eq!(outcomes[3].as_ref().expect("ran on the next child"), &json!(16));
    assert_eq!(pool.stats().lost, 1);
}
