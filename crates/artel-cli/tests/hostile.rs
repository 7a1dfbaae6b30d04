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

/// Pushes raw `envelope` onto kombu's list `list` (as any producer could).
fn lpush(list: &str, envelope: &str) {
    redis_cli(&["LPUSH".as_ref(), list.as_ref(), envelope.as_ref()]);
}

fn kombu_envelope(id: &str, headers_extra: &str, body: &str, queue: &str) -> String {
    format!(
        r#"{{"body":"{body}","content-encoding":"utf-8","content-type":"application/json","headers":{{"task":"echo","id":"{id}"{headers_extra}}},"properties":{{"delivery_tag":"{id}","body_encoding":"base64","delivery_info":{{"routing_key":"{queue}"}}}}}}"#
    )
}

#[test]
fn celery_redis_reads_pythons_infinity_and_dead_letters_what_it_cannot_read() {
    let prefix = format!("artel-test-hostile-{}", uuid::Uuid::new_v4());
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: String::new() };
    let url = format!("{}?prefix={prefix}:", support::redis_url().replacen("redis://", "celery+redis://", 1));
    let mut worker = support::WorkerProcess::start(&url, &["-Q", "q"]);
    let list = format!("{prefix}:q");
    let (infinite, unreadable) = (format!("inf-{}", uuid::Uuid::new_v4()), format!("bad-{}", uuid::Uuid::new_v4()));
    // What Celery 5.7 sends for send_task('echo', ['x'], time_limit=float('inf')).
    lpush(&list, &kombu_envelope(&infinite, r#","timelimit":[Infinity,null]"#, "W1sieCJdLHt9LHt9XQ==", "q"));
    lpush(&list, &kombu_envelope(&unreadable, r#","eta":1e400"#, "not base64!", "q"));
    let bad_body = format!("body-{}", uuid::Uuid::new_v4());
    lpush(&list, &kombu_envelope(&bad_body, "", "not base64!", "q"));
    let (code, shown, _) = support::artel(&url, &["result", "--wait", "--timeout", "20", &infinite]);
    assert_eq!(code, 0, "an infinite time limit is no limit: {shown}");
    assert!(shown.contains(r#""x""#), "{shown}");
    let (code, out, stderr) = support::artel(&url, &["call", "echo", "-Q", "q", "--args", r#"["next"]"#, "--wait"]);
    assert_eq!((code, out.trim()), (0, r#""next""#), "the worker serves on: {stderr}");
    assert!(worker.0.try_wait().expect("try_wait").is_none(), "the worker is still running");
    // Its id is readable: the caller learns why instead of waiting for a timeout.
    let (code, shown, _) = support::artel(&url, &["result", "--wait", "--timeout", "20", &bad_body]);
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("DecodeError") && shown.contains("not valid base64"), "{shown}");
    // The result is stored before the message is dead-lettered: wait for the second.
    let dead_list = format!("{prefix}:_artel.dead");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let dead = loop {
        let dead = redis_cli(&["LRANGE".as_ref(), dead_list.as_ref(), "0".as_ref(), "-1".as_ref()]);
        if dead.contains(&bad_body) || std::time::Instant::now() > deadline {
            break dead;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(dead.contains(&unreadable) && dead.contains("undecodable message"), "kept with its reason: {dead}");
    assert!(dead.contains(&bad_body), "and it is dead-lettered: {dead}");
}

/// Runs `redis-cli` against the test Redis and returns its output.
fn redis_cli(args: &[&std::ffi::OsStr]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-u", &support::redis_url()])
        .args(args)
        .output()
        .expect("redis-cli");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_junk_in_the_keyspace_neither_stops_a_worker_nor_breaks_dead_list() {
    use std::os::unix::ffi::OsStrExt;
    let prefix = format!("artel-test-junk-{}", uuid::Uuid::new_v4());
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: String::new() };
    let url = format!("{}?prefix={prefix}&poll_ms=10", support::redis_url());
    let (code, id, _) = support::artel(&url, &["call", "echo", "--args", r#"["despite junk"]"#]);
    assert_eq!(code, 0);
    let priorities = format!("{prefix}:{{celery}}:priorities");
    let messages = format!("{prefix}:{{celery}}:messages");
    let held = redis_cli(&["HKEYS".as_ref(), messages.as_ref()]);
    let message_id = held.lines().next().expect("the message is stored");
    redis_cli(&["HSET".as_ref(), priorities.as_ref(), message_id.as_ref(), "not a number".as_ref()]);
    let dead = format!("{prefix}:{{celery}}:dead");
    redis_cli(&["RPUSH".as_ref(), dead.as_ref(), std::ffi::OsStr::from_bytes(b"\xff\xfe not utf-8")]);

    let (code, _, stderr) = support::artel(&url, &["worker", "--burst"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, shown, _) = support::artel(&url, &["result", id.trim()]);
    assert_eq!(code, 0, "junk in the priorities hash reads as priority 0: {shown}");
    let (code, listed, stderr) = support::artel(&url, &["dead", "list"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(listed.contains("an entry artel cannot read"), "{listed}");
    let (_, retried, _) = support::artel(&url, &["dead", "retry"]);
    assert_eq!(retried.trim(), "requeued 0 dead messages");
    let (_, listed, _) = support::artel(&url, &["dead", "list"]);
    assert!(listed.contains("an entry artel cannot read"), "an unreadable entry is kept, not lost: {listed}");
}

#[test]
fn kombu_junk_in_bindings_and_held_messages_does_not_break_artel_queues() {
    use std::os::unix::ffi::OsStrExt;
    let prefix = format!("artel-test-kombu-junk-{}", uuid::Uuid::new_v4());
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: String::new() };
    let url = format!("{}?prefix={prefix}:", support::redis_url().replacen("redis://", "celery+redis://", 1));
    let (code, _, stderr) = support::artel(&url, &["call", "echo", "-Q", "q", "--args", r#"["x"]"#]);
    assert_eq!(code, 0, "{stderr}");
    let junk = std::ffi::OsStr::from_bytes(b"\xff\xfe not utf-8");
    let binding = format!("{prefix}:_kombu.binding.junk");
    redis_cli(&["SADD".as_ref(), binding.as_ref(), junk]);
    let unacked = format!("{prefix}:unacked");
    redis_cli(&["HSET".as_ref(), unacked.as_ref(), "junk-tag".as_ref(), junk]);

    let (code, shown, stderr) = support::artel(&url, &["queues"]);
    assert_eq!(code, 0, "{stderr}");
    let q = shown.lines().find(|line| line.split_whitespace().next() == Some("q"));
    assert_eq!(q.and_then(|line| line.split_whitespace().nth(1)), Some("1"), "q with its one message: {shown}");
}

#[test]
fn a_message_over_the_size_limit_is_dead_lettered_unread() {
    let db = ScratchDb::new("too-large");
    let url = sqlite(&db);
    let (code, id, _) = support::artel(&url, &["call", "echo", "--args", r#"["a body"]"#]);
    assert_eq!(code, 0);
    let (code, _, stderr) = support::artel(&url, &["worker", "--burst", "--max-message-size", "0"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, shown, _) = support::artel(&url, &["result", id.trim()]);
    assert_eq!(code, 1, "{shown}");
    assert!(shown.contains("over this worker's 0-byte maximum (artel worker --max-message-size)"), "{shown}");
    let (_, dead, _) = support::artel(&url, &["dead", "list"]);
    assert!(dead.contains("over this worker's 0-byte maximum"), "{dead}");
}

/// A small file system of the test's own (a tmpfs: needs root), unmounted at the end.
struct TinyDisk(std::path::PathBuf);

impl TinyDisk {
    fn mount(megabytes: u32) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("artel-tiny-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            return Some(Self(dir));
        }
        let _ = std::fs::remove_dir(&dir);
        eprintln!("skipped: mounting a small tmpfs needs root");
        None
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_pauses_the_worker_until_space_returns() {
    let Some(disk) = TinyDisk::mount(8) else { return };
    let url = format!("sqlite://{}?poll_ms=10", disk.0.join("artel.db").display());
    let mut worker = support::WorkerProcess::start(&url, &["-c", "2"]);
    let (code, out, stderr) =
        support::artel(&url, &["call", "echo", "--args", r#"["before"]"#, "--wait", "--timeout", "20"]);
    assert_eq!((code, out.trim()), (0, r#""before""#), "{stderr}");
    let (code, later, _) = support::artel(&url, &["call", "echo", "--args", r#"["after"]"#, "--countdown", "1"]);
    assert_eq!(code, 0);
    let filler = disk.fill();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(worker.0.try_wait().expect("try_wait").is_none(), "the worker pauses instead of exiting");
    std::fs::remove_file(filler).expect("free the space");
    let (code, shown, _) = support::artel(&url, &["result", "--wait", "--timeout", "30", later.trim()]);
    assert_eq!(code, 0, "it resumes by itself once space is freed: {shown}");
    drop(worker);
}
