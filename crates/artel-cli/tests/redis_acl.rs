//! A Redis ACL user limited to the rules docs/redis-acl.md gives — its key prefix, its
//! channels, the command categories listed — runs a worker, sends and waits for tasks,
//! fans out with `map` and serves the dashboard. A user without them is told the command
//! it may not run and where the rules are. The user's password appears in none of the outputs.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The rules docs/redis-acl.md gives for prefix `P`, as `ACL SETUSER` arguments.
fn documented_rules(prefix: &str) -> Vec<String> {
    let rules = "resetkeys ~P:* resetchannels &P:* -@all +@read +@write +@scripting +@pubsub +@connection -@dangerous";
    rules.replace('P', prefix).split(' ').map(str::to_owned).collect()
}

fn redis_cli(args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-u", &support::redis_url()]).args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An ACL user, deleted at the end (with the test's keys).
struct AclUser {
    name: String,
    password: String,
    _keys: support::RedisCleanup,
}

impl AclUser {
    fn create(prefix: &str, rules: &[String]) -> Self {
        let name = format!("artel-test-{}", uuid::Uuid::new_v4().simple());
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let mut args =
            vec!["ACL".to_owned(), "SETUSER".to_owned(), name.clone(), "on".to_owned(), format!(">{password}")];
        args.extend(rules.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(redis_cli(&refs).trim(), "OK", "ACL SETUSER {rules:?}");
        let keys = support::RedisCleanup { prefix: prefix.to_owned(), runs: String::new() };
        Self { name, password, _keys: keys }
    }

    fn url(&self, prefix: &str) -> String {
        let base = support::redis_url();
        let authority = base.strip_prefix("redis://").unwrap_or(&base);
        format!("redis://{}:{}@{authority}?prefix={prefix}&poll_ms=10", self.name, self.password)
    }
}

impl Drop for AclUser {
    fn drop(&mut self) {
        redis_cli(&["ACL", "DELUSER", &self.name]);
    }
}

fn redis_answers() -> bool {
    let ping = Command::new("redis-cli").args(["-u", &support::redis_url(), "ping"]).output();
    let up = ping.is_ok_and(|out| out.stdout.starts_with(b"PONG"));
    if !up {
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "Redis is required");
        eprintln!("skipped: no Redis at {}", support::redis_url());
    }
    up
}

/// Runs `artel` with `stdin`: (exit code, stdout + stderr).
fn artel(url: &str, args: &[&str], stdin: &str) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_artel"))
        .args(["--broker", url])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run artel");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("feed");
    let out = child.wait_with_output().expect("artel");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn get(url: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let response = reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        (response.status().as_u16(), response.text().await.unwrap_or_default())
    })
}

#[test]
fn a_user_with_the_documented_rules_runs_worker_producer_map_and_dashboard() {
    if !redis_answers() {
        return;
    }
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let user = AclUser::create(&prefix, &documented_rules(&prefix));
    let url = user.url(&prefix);
    let worker_log = std::env::temp_dir().join(format!("{prefix}.worker.log"));
    let mut worker = Command::new(env!("CARGO_BIN_EXE_artel"))
        .args(["--broker", &url, "worker", "-c", "8"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&worker_log).expect("log file"))
        .spawn()
        .expect("worker");
    let mut outputs = Vec::new();

    let (code, text) = artel(&url, &["call", "echo", "--args", "[\"through acl\"]", "--wait", "--timeout", "20"], "");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("through acl"), "{text}");
    outputs.push(text);
    let items: String = (0..50).map(|i| format!("{i}\n")).collect();
    let (code, text) = artel(&url, &["map", "--task", "echo", "-c", "10", "--quiet"], &items);
    assert_eq!((code, text.lines().count()), (0, 50), "{text}");
    outputs.push(text);
    for command in [&["queues", "--json"][..], &["stats", "--json"], &["dead", "list", "--json"]] {
        let (code, text) = artel(&url, command, "");
        assert_eq!(code, 0, "{command:?}: {text}");
        outputs.push(text);
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut dashboard = Command::new(env!("CARGO_BIN_EXE_artel"))
        .args(["--broker", &url, "dashboard", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dashboard");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the dashboard did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    for page in ["overview", "queues", "tasks", "dead", "workers"] {
        let (status, body) = get(&format!("http://127.0.0.1:{port}/api/{page}"));
        assert_eq!(status, 200, "/api/{page}: {body}");
        outputs.push(body);
    }
    let _ = dashboard.kill();
    let dashboard = dashboard.wait_with_output().expect("dashboard output");
    outputs.push(String::from_utf8_lossy(&dashboard.stderr).into_owned());
    let _ = worker.kill();
    let _ = worker.wait();
    outputs.push(std::fs::read_to_string(&worker_log).unwrap_or_default());
    let _ = std::fs::remove_file(&worker_log);
    for output in &outputs {
        assert!(!output.contains(&user.password), "the password leaked: {output}");
    }
}

#[test]
fn a_user_without_the_rules_is_told_which_permission_it_lacks() {
    if !redis_answers() {
        return;
    }
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let rules: Vec<String> = format!("resetkeys ~{prefix}:* resetchannels -@all +@read +@connection")
        .split(' ')
        .map(str::to_owned)
        .collect();
    let user = AclUser::create(&prefix, &rules);
    let (code, text) = artel(&user.url(&prefix), &["call", "echo", "--args", "[1]"], "");
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("no permissions to run the 'sadd' command") && text.contains("docs/redis-acl.md"), "{text}");
    assert!(!text.contains(&user.password), "the password leaked: {text}");
}
