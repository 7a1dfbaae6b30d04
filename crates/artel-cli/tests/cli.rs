//! The `artel` binary as a user runs it.

use std::process::Command;

fn artel(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_artel")).args(args).output().expect("runs the artel binary")
}

#[test]
fn demo_runs_the_calls_through_a_worker_process() {
    let out = artel(&["demo", "--calls", "400", "--concurrency", "100", "--latency-ms", "20"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("400 calls of 20 ms simulated I/O through a worker process (concurrency 100)"), "{stdout}");
    let failed = stdout.lines().find(|l| l.starts_with("failed")).expect("a failed row");
    assert!(failed.trim_end().ends_with(" 0"), "{failed}");
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
    for command in ["worker", "call", "result", "revoke", "queues", "purge", "dead", "stats", "demo", "bench"] {
        assert!(help.contains(command), "{help}");
    }
}
