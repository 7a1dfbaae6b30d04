//! Runs `fib` in child processes, as Python's `ProcessPoolExecutor` would, and shows that
//! a crashing call fails alone:
//!
//! ```sh
//! cargo run --release -p process-pool
//! ```

use std::time::{Duration, Instant};

use artel::pool::{Call, Functions, JobError, ProcessPool, serve_if_child};
use serde_json::{Value, json};

fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

/// The functions children may run, by name. Parent and children build the same list.
fn functions() -> Functions {
    Functions::new()
        .register("fib", |n: Value| {
            n.as_u64().map(|n| json!(fib(n))).ok_or_else(|| format!("fib needs a number, got {n}"))
        })
        .register("crash", |_| std::process::abort())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The one line: in a child, serve calls and exit; in the parent, return at once.
    serve_if_child(&functions());

    let pool = ProcessPool::builder().processes(2).max_tasks_per_child(100).build()?;
    let started = Instant::now();
    let results: Vec<Value> =
        pool.map("fib", (20..30).map(|n| json!(n)), 4).blocking().collect::<Result<_, JobError>>()?;
    println!("fib(20..30) = {} in {:?}", Value::Array(results), started.elapsed());

    let crashed = pool.submit("crash", json!(null))?.wait();
    println!("a call that aborts its child: {}", crashed.map_or_else(|e| e.to_string(), |v| v.to_string()));

    let limited = pool.submit_call(Call::new("fib", json!(45)).time_limit(Duration::from_millis(200)))?.wait();
    println!("fib(45) under a 200 ms limit: {}", limited.map_or_else(|e| e.to_string(), |v| v.to_string()));

    println!("fib(10) afterwards = {}", pool.submit("fib", json!(10))?.wait()?);
    println!("{:?}", pool.stats());
    Ok(())
}
