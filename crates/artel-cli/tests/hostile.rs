//! Bad input never stops a worker and never vanishes: it runs, or it goes to the dead
//! letters with its reason (issue "Hostile input and storage faults").

mod support;

use artel_broker_tests::ScratchDb;

fn sqlite(db: &ScratchDb) -> String {
    format!("sqlite://{}?poll_ms=10", db.path().display())
}

/// Runs `statements` on the database with Python's `sqlite3`, as another program would.
fn python_sqlite(db: &ScratchDb, statements: &str) {
    let script =
        format!("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript({statements:?})\nc.commit()");
    let status = std::process::Command::new("python3")
        .args(["-c", &script, &db.path().display().to_string()])
        .status()
        .expect("python3");
    assert!(status.success(), "{statements}");
}

#[test]
fn sqlite_envelopes_stored_as_text_run_and_other_junk_is_dead_lettered() {
    let db = ScratchDb::new("text-envelope");
    let url = sqlite(&db);
    let (code, id, _) = support::artel(&url, &["call", "echo", "--args", r#"["as text"]"#]);
    assert_eq!(code, 0);
    python_sqlite(
        &db,
        "UPDATE messages SET envelope = CAST(envelope AS TEXT);
         INSERT INTO messages (queue, priority, visible_at, task_id, envelope) VALUES ('celery', 0, 0, 'junk-int', 42);",
    );
    let (code, _, stderr) = support::artel(&url, &["worker", "--burst"]);
    assert_eq!(code, 0, "the worker serves on: {stderr}");
    let (code, shown, _) = support::artel(&url, &["result", id.trim()]);
    assert_eq!(code, 0, "a TEXT envelope is the same JSON: {shown}");
    let (_, dead, _) = support::artel(&url, &["dead", "list"]);
    assert!(dead.contains("undecodable message"), "{dead}");
}

#[test]
fn a_missing_required_argument_is_a_type_error_not_null() {
    let db = ScratchDb::new("missing-arg");
    let url = sqlite(&db);
    let (code, id, _) = support::artel(&url, &["call", "echo"]);
    assert_eq!(code, 0);
    support::artel(&url, &["worker", "--burst"]);
    let (code, shown, _) = support::artel(&url, &["result", id.trim()]);
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("TypeError: echo(): missing required argument `value`"), "{shown}");
}
