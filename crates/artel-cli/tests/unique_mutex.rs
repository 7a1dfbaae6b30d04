//! Unique and mutex tasks with real worker processes, on sqlite:// and redis://: 100
//! concurrent sends of one unique call queue it once and run it once; 20 runs of a
//! mutex task on one key across two workers never overlap, whether a run waits for the
//! lock or is put off for later.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use artel::pool::Pool;
use artel::{App, Registry, Stop, TaskError, WorkerConfig};
use artel_broker_tests::ScratchDb;
use support::WorkerProcess;

mod support;

const URL: &str = "ARTEL_TEST_WORKER_URL";
const RUNS: &str = "ARTEL_TEST_WORKER_RUNS";

fn runs_file() -> PathBuf {
    PathBuf::from(std::env::var_os(RUNS).unwrap_or_default())
}

fn note(line: &str) -> Result<(), TaskError> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(runs_file())?;
    // One write per line: two workers append at once, and `writeln!` may write the line
    // and its newline separately, joining two workers' lines into one.
    file.write_all(format!("{line}\n").as_bytes())?;
    Ok(())
}

/// Notes each run of one feed.
#[artel::task(unique_for = "60s")]
async fn refresh(ctx: artel::Context, feed: String) -> Result<(), TaskError> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    note(&format!("refresh {feed} {}", ctx.id()))
}

/// Runs alone per customer, waiting up to a second for its turn.
#[artel::task(lock = "report-{customer}", lock_timeout = "1s")]
async fn report(customer: u64) -> Result<(), TaskError> {
    alone("report", customer).await
}

/// Runs alone per customer; when another run holds the lock it goes back for later.
#[artel::task(lock = "export-{customer}")]
async fn export(customer: u64) -> Result<(), TaskError> {
    alone("export", customer).await
}

/// A run that notes itself inside (a second run inside at once is an error), works a
/// while, and notes its worker.
async fn alone(task: &str, customer: u64) -> Result<(), TaskError> {
    let inside = runs_file().with_extension(format!("{task}-inside-{customer}"));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&inside)
        .map_err(|e| TaskError::msg(format!("two runs of {task}({customer}) overlap: {e}")))?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    note(&format!("{task} {customer} {}", std::process::id()))?;
    std::fs::remove_file(&inside)?;
    Ok(())
}

fn registry() -> Registry {
    Registry::new().with(refresh).with(report).with(export)
}

/// Not a test: with the parent's environment, this process is a worker until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_child() {
    let Ok(url) = std::env::var(URL) else { return };
    let connection = artel::connect(&url).await.expect("connect");
    // No prefetch beyond the free slots: one worker must not take every message.
    let config = WorkerConfig { concurrency: 4, prefetch: 4, ..WorkerConfig::default() };
    let worker = connection.worker(registry(), config).build().expect("worker");
    let pool = Pool::builder().build().expect("pool");
    worker.run(&pool, Stop::default()).await.expect("run");
}

fn workers(n: usize, url: &str, runs: &Path) -> Vec<WorkerProcess> {
    (0..n).map(|_| support::self_worker(&[(URL, url.as_ref()), (RUNS, runs.as_os_str())])).collect()
}

fn lines(runs: &Path, prefix: &str) -> Vec<String> {
    let text = std::fs::read_to_string(runs).unwrap_or_default();
    text.lines().filter(|l| l.starts_with(prefix)).map(str::to_owned).collect()
}

async fn a_unique_call_sent_100_times_at_once_runs_once(url: &str, runs: &Path) {
    let mut apps = Vec::new();
    for _ in 0..4 {
        apps.push(std::sync::Arc::new(App::connect(url).await.expect("connect")));
    }
    let sends: Vec<_> = (0..100)
        .map(|n| {
            let app = apps[n % apps.len()].clone();
            tokio::spawn(async move { refresh::delay(&app, "feed-1".to_owned()).await.expect("send").id().to_owned() })
        })
        .collect();
    let mut ids = Vec::new();
    for send in sends {
        ids.push(send.await.expect("sent"));
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "every send names the first call: {:?}", dedup(&ids));
    assert_eq!(apps[0].backend().broker().len("celery").await.expect("len"), 1, "queued once");

    let _workers = workers(2, url, runs);
    apps[0].backend().results().wait(&ids[0], Duration::from_secs(30)).await.expect("ran");
    tokio::time::sleep(Duration::from_millis(300)).await; // nothing else runs
    assert_eq!(lines(runs, "refresh"), [format!("refresh feed-1 {}", ids[0])], "ran once");

    // It ended: its key is free, so the next send is a new call; another feed is separate.
    let again = refresh::delay(&apps[0], "feed-1".to_owned()).await.expect("send");
    assert_ne!(again.id(), ids[0], "a finished call frees its key");
    let other = refresh::delay(&apps[0], "feed-2".to_owned()).await.expect("send");
    assert_ne!(other.id(), again.id());
    for id in [again.id(), other.id()] {
        apps[0].backend().results().wait(id, Duration::from_secs(30)).await.expect("ran");
    }
}

async fn mutex_runs_of_one_key_never_overlap_across_two_workers(url: &str, runs: &Path) {
    let app = App::connect(url).await.expect("connect");
    let _workers = workers(2, url, runs);
    both_workers_report(&app).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(report::delay(&app, 7).await.expect("send").id().to_owned());
        ids.push(export::delay(&app, 7).await.expect("send").id().to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    for id in &ids {
        let left = deadline.saturating_duration_since(Instant::now());
        let result = app.backend().results().wait(id, left).await.expect("finished");
        assert_eq!(result.status, artel::State::Success, "{result:?}");
    }
    let mut workers = std::collections::BTreeSet::new();
    for task in ["report 7", "export 7"] {
        let done = lines(runs, task);
        assert_eq!(done.len(), 20, "{done:?}");
        workers.extend(done.iter().filter_map(|l| l.split(' ').nth(2).map(str::to_owned)));
    }
    // Which worker runs a deferred export is up to the broker; over both tasks each ran some.
    assert_eq!(workers.len(), 2, "both workers ran some: {workers:?}");
}

/// Waits until two workers have reported, so that neither takes every run alone
/// before the other has started.
async fn both_workers_report(app: &App) {
    let registry = app.backend().workers().expect("the backend keeps a worker registry").clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while registry.workers().await.expect("workers").len() < 2 {
        assert!(Instant::now() < deadline, "two workers report within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn dedup(ids: &[String]) -> std::collections::BTreeSet<&String> {
    ids.iter().collect()
}

fn sqlite_url(db: &ScratchDb) -> String {
    format!("sqlite://{}?poll_ms=10", db.path().display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sqlite_a_unique_call_sent_100_times_at_once_runs_once() {
    let db = ScratchDb::new("unique");
    let runs = db.path().with_extension("runs");
    a_unique_call_sent_100_times_at_once_runs_once(&sqlite_url(&db), &runs).await;
    let _ = std::fs::remove_file(runs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sqlite_mutex_runs_of_one_key_never_overlap_across_two_workers() {
    let db = ScratchDb::new("mutex");
    let runs = db.path().with_extension("runs");
    mutex_runs_of_one_key_never_overlap_across_two_workers(&sqlite_url(&db), &runs).await;
    let _ = std::fs::remove_file(runs);
}

/// A Redis URL under a fresh prefix, and the cleanup of its keys and files; `None` (the
/// test skipped) when no Redis answers, unless ARTEL_REQUIRE_SERVICES=1.
async fn redis(purpose: &str) -> Option<(String, PathBuf, RedisKeys)> {
    let prefix = format!("artel-test-{purpose}-{}", uuid::Uuid::new_v4().simple());
    let base = std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
    let url = format!("{base}?prefix={prefix}&poll_ms=10");
    if let Err(error) = artel::connect(&url).await {
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "Redis is required: {error}");
        eprintln!("skipped: {error}");
        return None;
    }
    let runs = std::env::temp_dir().join(format!("{prefix}.runs"));
    Some((url, runs.clone(), RedisKeys { base, prefix, runs }))
}

struct RedisKeys {
    base: String,
    prefix: String,
    runs: PathBuf,
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.runs);
        let script = format!(
            "redis-cli -u '{0}' --scan --pattern '{1}:*' | xargs -r redis-cli -u '{0}' del",
            self.base, self.prefix
        );
        let _ = Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_redis_a_unique_call_sent_100_times_at_once_runs_once() {
    let Some((url, runs, _keys)) = redis("unique").await else { return };
    a_unique_call_sent_100_times_at_once_runs_once(&url, &runs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_redis_mutex_runs_of_one_key_never_overlap_across_two_workers() {
    let Some((url, runs, _keys)) = redis("mutex").await else { return };
    mutex_runs_of_one_key_never_overlap_across_two_workers(&url, &runs).await;
}

#[test]
fn artel_call_sent_as_unique_prints_the_queued_calls_id() {
    let db = ScratchDb::new("unique-cli");
    let url = sqlite_url(&db);
    let call = |args: &str, unique: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_artel"))
            .args(["--broker", &url, "--log-level", "warn", "call", "echo", "--args", args])
            .args(unique)
            .output()
            .expect("artel call");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let first = call(r#"["x"]"#, &["--unique-for", "60"]);
    assert_eq!(call(r#"["x"]"#, &["--unique-for", "60"]), first, "same task and arguments: the queued call");
    assert_ne!(call(r#"["y"]"#, &["--unique-for", "60"]), first, "other arguments: another call");
    let keyed = call(r#"["a"]"#, &["--unique-key", "nightly"]);
    assert_eq!(call(r#"["b"]"#, &["--unique-key", "nightly"]), keyed, "one key, whatever the arguments");
    assert_ne!(call(r#"["x"]"#, &[]), first, "a call not sent as unique is always queued");
}
