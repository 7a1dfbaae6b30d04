//! `artel map` through a binary of your own: output in input order with `--ordered`,
//! `--rate` spacing calls, `--retries` getting a flaky task through, `--resume` after a
//! SIGKILL writing each item exactly once, and CSV templates.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A scratch directory, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("artel-map-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn map(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_custom-cli"))
        .arg("map")
        .args(args)
        .args(["--quiet"])
        .env_remove("ARTEL_BROKER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start artel map");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("feed");
    child.wait_with_output().expect("run")
}

/// SIGKILLs `run` once `output` holds `lines` lines.
fn kill_after_lines(mut run: std::process::Child, output: &str, lines: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(output).map_or(0, |t| t.lines().count()) < lines {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.kill().expect("SIGKILL");
    run.wait().expect("reaped");
}

fn lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

#[test]
fn ordered_output_follows_the_input_though_later_items_finish_first() {
    // Each item sleeps less than the one before it: they finish in reverse.
    let input: String = (0..20).map(|i| format!("{}\n", f64::from(20 - i) * 0.01)).collect();
    let out = map(&["--task", "sleep", "--format", "jsonl", "--args", "[\"{}\"]", "--ordered", "-c", "20"], &input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results = lines(&String::from_utf8_lossy(&out.stdout));
    let indexes: Vec<u64> = results.iter().map(|r| r["index"].as_u64().expect("index")).collect();
    assert_eq!(indexes, (0..20).collect::<Vec<_>>());
}

#[test]
fn a_rate_spaces_the_calls_evenly() {
    let input: String = (0..200).map(|i| format!("{i}\n")).collect();
    let started = Instant::now();
    let out = map(&["--task", "noop", "--args", "[]", "--rate", "50/s", "-c", "100"], &input);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(lines(&String::from_utf8_lossy(&out.stdout)).len(), 200);
    assert!(took >= Duration::from_millis(3900), "200 calls at 50/s took {took:?}");
}

#[test]
fn retries_get_a_task_that_fails_twice_through_and_too_few_leave_failures() {
    let scratch = Scratch::new();
    let input = "a\nb\nc\n";
    let out = map(&["--task", "app.flaky", "--retries", "2", "--backoff", "0.01"], input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for result in lines(&String::from_utf8_lossy(&out.stdout)) {
        assert_eq!(
            (result["ok"].as_str(), result["attempts"].as_u64()),
            (result["input"].as_str(), Some(3)),
            "{result}"
        );
    }
    let failures = scratch.path("failures.jsonl");
    let out = map(&["--task", "app.flaky", "--retries", "1", "--backoff", "0.01", "--failures", &failures], input);
    assert_eq!(out.status.code(), Some(1), "some items failed");
    let failed = lines(&std::fs::read_to_string(&failures).expect("failures file"));
    assert_eq!(failed.len(), 3);
    assert!(
        failed.iter().all(|f| f["error"].as_str().is_some_and(|e| e.contains("upstream busy (call 2"))),
        "{failed:?}"
    );
}

#[test]
fn a_killed_run_resumed_writes_each_item_exactly_once() {
    let scratch = Scratch::new();
    let items = 300;
    let input = scratch.file("items.txt", &(0..items).map(|_| "0.05\n").collect::<String>());
    let output = scratch.path("out.jsonl");
    let args = [
        "--task", "sleep", "--format", "jsonl", "--args", "[\"{}\"]", "-c", "10", "--input", &input, "--output",
        &output,
    ];
    let first = Command::new(env!("CARGO_BIN_EXE_custom-cli"))
        .arg("map")
        .args(args)
        .arg("--quiet")
        .env_remove("ARTEL_BROKER")
        .spawn()
        .expect("start");
    // Killed midway: some items written, some running, the rest not started.
    kill_after_lines(first, &output, 50);
    let before = std::fs::read_to_string(&output).expect("output").lines().count();
    assert!(before < items, "killed before the end ({before} written)");
    let resumed = Command::new(env!("CARGO_BIN_EXE_custom-cli"))
        .arg("map")
        .args(args)
        .args(["--quiet", "--resume"])
        .env_remove("ARTEL_BROKER")
        .output()
        .expect("resume");
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let mut indexes: Vec<u64> = lines(&std::fs::read_to_string(&output).expect("output"))
        .iter()
        .map(|r| r["index"].as_u64().expect("index"))
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..items as u64).collect::<Vec<_>>(), "each index once");
}

#[test]
fn a_journal_lets_a_run_writing_to_standard_output_resume() {
    let scratch = Scratch::new();
    let items = 300u64;
    let input = scratch.file("items.txt", &(0..items).map(|_| "0.05\n").collect::<String>());
    let (journal, first_out, second_out) = (scratch.path("journal"), scratch.path("1.jsonl"), scratch.path("2.jsonl"));
    let args = [
        "--task",
        "sleep",
        "--format",
        "jsonl",
        "--args",
        "[\"{}\"]",
        "-c",
        "10",
        "--input",
        &input,
        "--journal",
        &journal,
    ];
    let run = |out: &str, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_custom-cli"))
            .arg("map")
            .args(args)
            .args(extra)
            .arg("--quiet")
            .env_remove("ARTEL_BROKER")
            .stdout(std::fs::File::create(out).expect("stdout file"))
            .spawn()
            .expect("start")
    };
    kill_after_lines(run(&first_out, &[]), &first_out, 50);
    let status = run(&second_out, &["--resume"]).wait().expect("resumed");
    assert!(status.success());
    let text =
        std::fs::read_to_string(&first_out).expect("first") + &std::fs::read_to_string(&second_out).expect("2nd");
    let written: Vec<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["index"].as_u64().expect("index"))
        .collect();
    let distinct: std::collections::BTreeSet<u64> = written.iter().copied().collect();
    assert_eq!(distinct, (0..items).collect(), "every index written");
    // Only lines flushed in the instant between the output and the journal can repeat.
    assert!(written.len() as u64 - items < 20, "{} lines for {items} items", written.len());
}

#[test]
fn csv_columns_fill_the_argument_templates() {
    let scratch = Scratch::new();
    let input = scratch.file("words.csv", "id,text\n1,to be or not\n2,\"a, b\"\n");
    let out =
        map(&["--task", "app.word_count", "--input", &input, "--kwargs", "{\"text\": \"{text}\"}", "--ordered"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results = lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(results[0]["ok"]["count"], 4);
    assert_eq!(results[1]["ok"]["count"], 2);
    assert_eq!(results[1]["input"]["id"], "2");
}
