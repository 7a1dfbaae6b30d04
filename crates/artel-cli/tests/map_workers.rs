//! `artel map --broker`: the calls run on worker processes, results are collected as
//! they finish, and a killed run resumed writes each item once and reuses the results
//! the workers stored for it instead of calling again.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::WorkerProcess;

/// The exec call each item makes: records its run in `runs`, then prints its worker's pid.
fn exec_kwargs(runs: &str, pause: f64) -> String {
    let script = format!("sleep {pause}; echo {{}} >> {runs}; echo $PPID");
    serde_json::json!({"program": "sh", "args": ["-c", script]}).to_string()
}

fn map_command(url: &str, input: &str, output: &str, kwargs: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_artel"));
    command
        .args(["--broker", url, "map", "--task", "exec", "--kwargs", kwargs, "-c", "20", "--quiet"])
        .args(["--input", input, "--output", output, "--timeout", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn lines(path: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("output")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// 200 items through two workers: every item ok, once, and both workers took part.
fn two_workers_share_the_items(url: &str) {
    let dir = tempdir();
    let (input, output, runs) = (dir.join("items.txt"), dir.join("out.jsonl"), dir.join("runs"));
    std::fs::write(&input, (0..200).map(|i| format!("{i}\n")).collect::<String>()).expect("input");
    let workers: Vec<WorkerProcess> =
        (0..2).map(|_| WorkerProcess::start(url, &["-c", "8", "--enable", "exec"])).collect();
    let kwargs = exec_kwargs(&runs.display().to_string(), 0.02);
    let out =
        map_command(url, &input.display().to_string(), &output.display().to_string(), &kwargs).output().expect("map");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results = lines(&output.display().to_string());
    let mut indexes: Vec<u64> = results.iter().map(|r| r["index"].as_u64().expect("index")).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..200).collect::<Vec<_>>(), "each item once");
    let pids: std::collections::BTreeSet<String> =
        results.iter().map(|r| r["ok"]["stdout"].as_str().expect("an exec output").trim().to_owned()).collect();
    let expected: std::collections::BTreeSet<String> = workers.iter().map(|w| w.pid().to_string()).collect();
    assert_eq!(pids, expected, "both workers ran items");
    let _ = std::fs::remove_dir_all(dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("artel-map-workers-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn two_sqlite_workers_share_the_items() {
    let dir = tempdir();
    let url = format!("sqlite://{}?poll_ms=10", dir.join("broker.db").display());
    two_workers_share_the_items(&url);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_redis_workers_share_the_items() {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: String::new() };
    let url = format!("{}?prefix={prefix}&poll_ms=10", support::redis_url());
    let ping = Command::new("redis-cli").args(["-u", &support::redis_url(), "ping"]).output();
    if !ping.is_ok_and(|out| out.stdout.starts_with(b"PONG")) {
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "Redis is required");
        eprintln!("skipped: no Redis at {}", support::redis_url());
        return;
    }
    two_workers_share_the_items(&url);
}

#[test]
fn a_killed_distributed_run_resumed_writes_each_item_once_and_reuses_stored_results() {
    let dir = tempdir();
    let url = format!("sqlite://{}?poll_ms=10", dir.join("broker.db").display());
    let (input, output, runs) = (dir.join("items.txt"), dir.join("out.jsonl"), dir.join("runs"));
    let (input, output, runs) = (input.display().to_string(), output.display().to_string(), runs.display().to_string());
    let items = 200;
    std::fs::write(&input, (0..items).map(|i| format!("{i}\n")).collect::<String>()).expect("input");
    let _workers: Vec<WorkerProcess> =
        (0..2).map(|_| WorkerProcess::start(&url, &["-c", "10", "--enable", "exec"])).collect();
    let kwargs = exec_kwargs(&runs, 0.05);
    let mut first = map_command(&url, &input, &output, &kwargs).spawn().expect("map");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&output).map_or(0, |t| t.lines().count()) < 40 {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let written = std::fs::read_to_string(&output).expect("output").lines().count();
    assert!(written < items, "killed before the end ({written} written)");
    // The calls in flight at the kill finish on the workers meanwhile.
    std::thread::sleep(Duration::from_secs(2));
    let resumed = map_command(&url, &input, &output, &kwargs).arg("--resume").output().expect("resume");
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let mut indexes: Vec<u64> = lines(&output).iter().map(|r| r["index"].as_u64().expect("index")).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..items as u64).collect::<Vec<_>>(), "each index once");
    let ran = std::fs::read_to_string(&runs).expect("runs").lines().count();
    assert_eq!(ran, items, "the calls in flight at the kill were reused, not run again");
    let _ = std::fs::remove_dir_all(dir);
}
