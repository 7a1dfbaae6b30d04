//! The `artel` binary as a user runs it.

use std::process::Command;

/// Runs in a scratch directory (removed after), where the default broker would put its
/// `artel.db`; panics if the command left one there.
fn artel(args: &[&str]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("artel-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let out =
        Command::new(env!("CARGO_BIN_EXE_artel")).args(args).current_dir(&dir).output().expect("runs the artel binary");
    let left = dir.join("artel.db").exists();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!left || out.status.success(), "artel {args:?} failed and still created artel.db");
    out
}

#[test]
fn demo_runs_the_calls_through_a_worker_process() {
    let out = artel(&["demo", "--calls", "400", "--concurrency", "100", "--latency-ms", "20"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("400 calls of 20 ms simulated I/O through a worker process (concurrency 100)"), "{stdout}");
    let failed = stdout.lines().find(|l| l.starts_with("failed")).expect("a failed row");
    assert!(failed.trim_end().ends_with(" 0"), "{failed}");
    assert!(stdout.contains("artel worker --enable exec,http"), "says how to turn exec and http on: {stdout}");
}

#[test]
fn demo_local_fans_out_on_the_pool_and_reports_the_speed_up() {
    let out = artel(&["demo", "--local", "--calls", "400", "--concurrency", "100", "--latency-ms", "20"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("400 calls of 20 ms simulated I/O, 100 at a time"), "{stdout}");
    let failed = stdout.lines().find(|l| l.starts_with("failed")).expect("a failed row");
    assert!(failed.trim_end().ends_with(" 0"), "{failed}");
    // 400 calls x 20 ms one at a time would take 8 s.
    let serial = stdout.lines().find(|l| l.starts_with("one at a time")).expect("a one-at-a-time row");
    assert!(serial.ends_with(" 8 s"), "{serial}");
}

#[test]
fn bad_arguments_exit_with_a_usage_error() {
    let out = artel(&["demo", "--concurrency", "lots"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'lots'"));
    let out = artel(&["demo", "--concurrency", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--concurrency must be at least 1"));
}

#[test]
fn help_lists_every_command() {
    let out = artel(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    let commands =
        ["worker", "call", "result", "revoke", "queues", "purge", "dead", "failed", "stats", "tasks", "cache"];
    for command in commands.into_iter().chain(["demo", "bench", "completions"]) {
        assert!(help.contains(command), "{help}");
    }
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn sharp_edges_are_refused_with_an_explanation() {
    let out = artel(&["--broker", "memory://", "worker"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("memory:// lives inside one process"), "{}", stderr_of(&out));
    let out = artel(&["--broker", "memory://", "call", "noop"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));

    let out = artel(&["call", "noop", "-Q", ""]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("a queue name cannot be empty"), "{}", stderr_of(&out));
    let out = artel(&["worker", "-Q", "celery,"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));

    for flag in ["--countdown", "--expires"] {
        let out = artel(&["call", "echo", "--args", "[1]", flag, "1e15"]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert!(stderr_of(&out).contains("more than 10 years ahead"), "{flag}: {}", stderr_of(&out));
    }
    let out = artel(&["call", "echo", "--args", "[1]", "--eta", "2999-01-01T00:00:00Z"]);
    assert!(stderr_of(&out).contains("--eta 2999-01-01T00:00:00Z is more than 10 years ahead"), "{}", stderr_of(&out));
    let out = artel(&["call", "echo", "--eta", "tomorrow"]);
    assert!(stderr_of(&out).contains("is not an RFC 3339 time"), "{}", stderr_of(&out));
}

#[test]
fn tasks_lists_signatures_and_says_which_are_off() {
    let out = artel(&["tasks"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(listed.contains("sleep(seconds: f64) -> f64"), "{listed}");
    let exec = listed.lines().find(|l| l.starts_with("exec")).expect("exec listed");
    assert!(exec.contains("exec(program: String, args: Option<Vec<String>>)"), "{exec}");
    assert!(exec.contains("artel worker --enable exec"), "{exec}");
    let out = artel(&["tasks", "--json"]);
    let tasks: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(tasks.as_array().is_some_and(|t| t.iter().any(|t| t["name"] == "noop")), "{tasks}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = artel(&["completions", shell]);
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && script.contains("worker") && script.contains("enable"), "{shell}");
    }
}

#[test]
fn demo_and_bench_run_on_the_broker_they_are_given() {
    let redis = std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
    let out = artel(&["--broker", &redis, "demo", "--calls", "200", "--concurrency", "100", "--latency-ms", "10"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.contains(&format!("on {redis}?prefix=artel-demo-")), "{stdout}");
    let out = artel(&["--broker", &redis, "bench", "broker", "--tasks", "300", "--round-trips", "5"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", stderr_of(&out));
    assert!(stdout.starts_with(&format!("broker: {redis}?prefix=artel-bench-")), "{stdout}");
    let out = artel(&["--broker", "amqp://guest:secret@127.0.0.1//", "bench", "broker"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("runs on sqlite://, redis:// or postgres://"), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("secret"), "{}", stderr_of(&out));
}
