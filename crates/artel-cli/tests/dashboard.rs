//! The dashboard in a real headless Chromium, driven over the DevTools protocol, on
//! sqlite:// and redis://: it lists the running worker; a task sent during the test
//! turns from STARTED to SUCCESS on the page without a reload; a dead letter's "retry"
//! puts it back and the worker runs it; "Terminate" stops a running task and "Stop" the
//! worker; the schedules page names the leading beat and the next fire. A screenshot of each page is saved under
//! target/dashboard-screenshots/ for review.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chromiumoxide::Page;
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::ScreenshotParams;
use futures_util::StreamExt;
use serde_json::Value;
use support::{RedisCleanup, WorkerProcess, artel, redis_url};

const PATIENCE: Duration = Duration::from_secs(20);

/// `artel dashboard` on a port of its own, stopped at the end.
struct DashboardProcess {
    child: Child,
    address: String,
}

impl DashboardProcess {
    fn start(url: &str, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_artel"))
            .args(["--broker", url, "dashboard", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the dashboard");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("dashboard at http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
                }
            }
        });
        let address = rx.recv_timeout(PATIENCE).expect("the dashboard says where it listens");
        Self { child, address }
    }
}

impl Drop for DashboardProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium, from `ARTEL_CHROMIUM` or the distribution's package.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("ARTEL_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("ARTEL_REQUIRE_SERVICES").is_none(),
        "no Chromium at {} (scripts/test installs it)",
        path.display()
    );
    eprintln!("skipped: no Chromium at {}", path.display());
    None
}

/// A headless browser; its event loop runs until the browser closes.
async fn launch(chromium: PathBuf) -> Browser {
    let profile = std::env::temp_dir().join(format!("artel-chromium-{}", uuid::Uuid::new_v4()));
    let config = BrowserConfig::builder()
        .chrome_executable(chromium)
        .new_headless_mode()
        .no_sandbox()
        .user_data_dir(profile)
        .window_size(1400, 900)
        .build()
        .expect("browser config");
    let (browser, mut handler) = Browser::launch(config).await.expect("launch Chromium");
    tokio::spawn(async move { while handler.next().await.is_some() {} });
    browser
}

/// Evaluates `expression` until it yields something other than null/false.
async fn wait_for(page: &Page, expression: &str, what: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value: Value =
            page.evaluate(expression).await.ok().and_then(|r| r.into_value().ok()).unwrap_or(Value::Null);
        if !matches!(value, Value::Null | Value::Bool(false)) {
            return value;
        }
        assert!(Instant::now() < deadline, "the page never showed {what} ({expression})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Goes to `#fragment` the way a click on a link does (no reload).
async fn show(page: &Page, fragment: &str) {
    page.evaluate(format!("location.hash = {:?}", fragment)).await.expect("navigate");
}

async fn screenshot(page: &Page, broker: &str, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let params = ScreenshotParams::builder().full_page(true).build();
    page.save_screenshot(params, dir.join(format!("{broker}-{name}.png"))).await.expect("screenshot");
}

/// A task's state cell on the tasks page.
fn state_of(id: &str) -> String {
    format!("document.querySelector('[data-task-id=\"{id}\"] [data-state]')?.dataset.state ?? null")
}

async fn the_dashboard_shows_live_work_and_retries_a_dead_letter(url: &str, broker: &str) {
    let Some(chromium) = chromium() else { return };
    // A worker whose size limit refuses every message makes a dead letter.
    let mut strict = WorkerProcess::start(url, &["-c", "2", "--max-message-size", "0"]);
    let (code, dead_id, err) = artel(url, &["call", "echo", "--args", "[\"from the dead\"]"]);
    assert_eq!(code, 0, "{err}");
    let dead_id = dead_id.trim().to_owned();
    let deadline = Instant::now() + PATIENCE;
    while !artel(url, &["dead", "list"]).1.contains(&dead_id) {
        assert!(Instant::now() < deadline, "the message was never dead-lettered");
        std::thread::sleep(Duration::from_millis(100));
    }
    strict.signal("-TERM");
    strict.wait(PATIENCE);
    let mut worker = WorkerProcess::start(url, &["-c", "4"]);
    let schedule = std::env::temp_dir().join(format!("artel-dashboard-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&schedule, "[[schedule]]\nname = \"nightly\"\ntask = \"echo\"\ncron = \"0 30 2 * * *\"\n")
        .expect("schedule");
    let dashboard = DashboardProcess::start(url, &["--schedule", &schedule.display().to_string()]);

    let browser = launch(chromium).await;
    let page = browser.new_page(format!("http://{}/#/workers", dashboard.address)).await.expect("open the dashboard");
    wait_for(&page, "document.querySelectorAll('[data-worker] .state.SUCCESS').length === 1", "one running worker")
        .await;
    page.evaluate("window.artelMarker = 42").await.expect("mark the page");
    screenshot(&page, broker, "workers").await;

    let (code, slow_id, err) = artel(url, &["call", "sleep", "--args", "[1.5]"]);
    assert_eq!(code, 0, "{err}");
    let slow_id = slow_id.trim().to_owned();
    show(&page, "#/tasks").await;
    assert_eq!(
        wait_for(&page, &format!("({}) === 'STARTED' && 'STARTED'", state_of(&slow_id)), "the task STARTED").await,
        "STARTED"
    );
    screenshot(&page, broker, "tasks-started").await;
    assert_eq!(
        wait_for(&page, &format!("({}) === 'SUCCESS' && 'SUCCESS'", state_of(&slow_id)), "the task SUCCESS").await,
        "SUCCESS"
    );
    screenshot(&page, broker, "tasks").await;

    show(&page, "#/dead").await;
    wait_for(&page, &format!("document.querySelector('[data-dead=\"{dead_id}\"]') !== null"), "the dead letter").await;
    screenshot(&page, broker, "dead").await;
    page.find_element("[data-action=retry-all-dead]").await.expect("retry button").click().await.expect("click");
    wait_for(&page, &format!("document.querySelector('[data-dead=\"{dead_id}\"]') === null"), "the dead letter gone")
        .await;
    show(&page, &format!("#/task/{dead_id}")).await;
    wait_for(&page, "document.querySelector('h1 [data-state=\"SUCCESS\"]') !== null", "the retried task's SUCCESS")
        .await;
    let result =
        wait_for(&page, "[...document.querySelectorAll('pre')].map(p => p.textContent).join(' ')", "its result").await;
    assert!(result.as_str().is_some_and(|r| r.contains("from the dead")), "{result}");
    screenshot(&page, broker, "task").await;

    show(&page, "#/").await;
    // Both tasks count in the last hour's throughput (the page takes it from the live stream).
    let counted = "Number(document.querySelector('[data-card=succeeded] .n')?.textContent) >= 2";
    wait_for(&page, counted, "two tasks succeeded in the last hour").await;
    // A beat takes the lead and notes it; the schedules page names it.
    let _beat = WorkerProcess::from(
        Command::new(env!("CARGO_BIN_EXE_artel"))
            .args(["--broker", url, "beat", "--schedule", &schedule.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a beat"),
    );
    show(&page, "#/schedules").await;
    let leader = "document.querySelector('[data-leader^=\"beat.\"]')?.dataset.leader ?? null";
    wait_for(&page, leader, "the leading beat").await;
    let next =
        wait_for(&page, "document.querySelector('[data-entry=nightly] td:nth-child(4)')?.textContent", "the schedule")
            .await;
    assert!(next.as_str().is_some_and(|n| n.starts_with("in ")), "the next fire: {next}");
    for (fragment, name) in
        [("#/", "overview"), ("#/queues", "queues"), ("#/failed", "failed"), ("#/schedules", "schedules")]
    {
        show(&page, fragment).await;
        wait_for(&page, "document.querySelector('main h1') !== null", name).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        screenshot(&page, broker, name).await;
    }
    // The workers page lists what runs; "Terminate" stops a task, "Stop" the worker.
    let (code, long_id, err) = artel(url, &["call", "sleep", "--args", "[30]"]);
    assert_eq!(code, 0, "{err}");
    let long_id = long_id.trim().to_owned();
    show(&page, "#/workers").await;
    let running = format!("document.querySelector('[data-worker] a[href=\"#/task/{long_id}\"]') !== null");
    wait_for(&page, &running, "the running task on the workers page").await;
    screenshot(&page, broker, "workers-running").await;
    page.evaluate("window.confirm = () => true").await.expect("accept confirmations");
    page.find_element("[data-action=terminate]").await.expect("terminate button").click().await.expect("click");
    show(&page, "#/tasks").await;
    wait_for(&page, &format!("({}) === 'REVOKED'", state_of(&long_id)), "the terminated task REVOKED").await;
    show(&page, "#/workers").await;
    wait_for(&page, "document.querySelector('[data-action=stop-worker]') !== null", "the stop button").await;
    page.find_element("[data-action=stop-worker]").await.expect("stop button").click().await.expect("click");
    assert!(worker.wait(PATIENCE).success(), "the worker stopped cleanly");
    wait_for(&page, "document.querySelectorAll('[data-worker]').length === 0", "no worker listed").await;

    let marker: Value = page.evaluate("window.artelMarker ?? null").await.expect("marker").into_value().expect("json");
    assert_eq!(marker, 42, "the page was never reloaded");
    drop(browser);
    let _ = std::fs::remove_file(schedule);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("artel-dashboard-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("sqlite://{}?poll_ms=10", dir.join("broker.db").display());
    the_dashboard_shows_live_work_and_retries_a_dead_letter(&url, "sqlite").await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_on_redis() {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let _cleanup = RedisCleanup { prefix: prefix.clone(), runs: String::new() };
    let url = format!("{}?prefix={prefix}&poll_ms=10", redis_url());
    the_dashboard_shows_live_work_and_retries_a_dead_letter(&url, "redis").await;
}

/// Runs curl: (HTTP status, headers and body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl").args(["-s", "-i", "-w", "\n%{http_code}"]).args(args).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("status"), body.to_owned())
}

#[test]
fn the_dashboard_admits_only_its_token_and_actions_only_with_its_csrf_header() {
    let dir = std::env::temp_dir().join(format!("artel-dashboard-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let url = format!("sqlite://{}", dir.join("broker.db").display());
    // Beyond this machine only with access control.
    let (code, _, err) = artel(&url, &["dashboard", "--listen", "0.0.0.0:0"]);
    assert_ne!(code, 0);
    assert!(err.contains("without access control"), "{err}");
    let (code, _, err) = artel(&url, &["dashboard", "--token", "short"]);
    assert!(code != 0 && err.contains("at least 16"), "{err}");

    let token = "0123456789abcdef0123";
    let dashboard = DashboardProcess::start(&url, &["--token", token]);
    let base = format!("http://{}", dashboard.address);

    assert_eq!(curl(&[&format!("{base}/")]).0, 401, "no token, no page");
    assert_eq!(curl(&[&format!("{base}/api/overview")]).0, 401, "no token, no data");
    let (status, page) = curl(&[&format!("{base}/?token={token}")]);
    assert_eq!(status, 200);
    assert!(
        page.to_ascii_lowercase().contains(&format!("set-cookie: artel_token={token}; httponly; samesite=strict")),
        "{page}"
    );
    assert!(page.contains("content-security-policy: default-src 'self'"), "{page}");
    let csrf =
        page.split("name=\"artel-csrf\" content=\"").nth(1).and_then(|r| r.split('"').next()).expect("csrf meta");
    let bearer = format!("Authorization: Bearer {token}");
    let cookie = format!("Cookie: artel_token={token}");
    assert_eq!(curl(&["-H", &cookie, &format!("{base}/api/overview")]).0, 200, "the cookie admits");
    let retry = format!("{base}/api/dead/retry");
    assert_eq!(curl(&["-H", &bearer, "-X", "POST", &retry]).0, 403, "an action without the CSRF header");
    assert_eq!(curl(&["-H", &bearer, "-H", "X-Artel-Csrf: wrong", "-X", "POST", &retry]).0, 403);
    let (status, body) = curl(&["-H", &bearer, "-H", &format!("X-Artel-Csrf: {csrf}"), "-X", "POST", &retry]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("{\"retried\":0}"), "{body}");
    let (status, body) = curl(&["-H", &bearer, &format!("{base}/api/tasks?state=BOGUS")]);
    assert!(status == 400 && body.contains("no task state is called"), "{status} {body}");
    let (status, metrics) = curl(&["-H", &bearer, &format!("{base}/metrics")]);
    assert!(status == 200 && metrics.contains("# EOF"), "{metrics}");
    drop(dashboard);
    let _ = std::fs::remove_dir_all(dir);
}
