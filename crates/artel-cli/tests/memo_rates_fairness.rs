//! Memoized tasks, shared rate limits and fair groups with real worker processes: a call
//! with the same arguments is answered from the backend's cache without running (also
//! under a per-call `cache_key`) until `artel cache clear`; a `rate_limit_global` holds
//! across two workers (no 1 s window holds more than its rate, plus one), and a per-key
//! limit holds per key without slowing the other keys; a tenant's 20 calls sent behind
//! another tenant's 20,000 finish before 1,000 of those do; with `max_running_per_group
//! = 2`, two workers never run more than two calls of one tenant at once, and run
//! another tenant's beside them; `artel worker --max-running-per-group 1` caps tasks that
//! declare nothing.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use artel::core::{Clock, Message, SystemClock};
use artel::pool::Pool;
use artel::{App, Registry, Stop, TaskError, WorkerConfig};
use serde_json::json;
use support::{WorkerProcess, artel, brokers};

const URL: &str = "ARTEL_TEST_WORKER_URL";
const RUNS: &str = "ARTEL_TEST_WORKER_RUNS";
const CONCURRENCY: &str = "ARTEL_TEST_WORKER_CONCURRENCY";

/// Appends a line to the runs file (one write, so two workers never join lines).
fn note(line: &str) -> Result<(), TaskError> {
    use std::io::Write;
    let runs = PathBuf::from(std::env::var_os(RUNS).unwrap_or_default());
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(runs)?;
    file.write_all(format!("{line}\n").as_bytes())?;
    Ok(())
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default()
}

/// A price that takes work to find, so it is kept for ten minutes.
#[artel::task(cache_for = "10m")]
async fn price(sku: String) -> Result<u64, TaskError> {
    note(&format!("price {sku}"))?;
    Ok(100 * sku.len() as u64)
}

/// At most 50 runs a second across every worker; notes when it finished.
#[artel::task(rate_limit_global = "50/s")]
async fn ping(n: u32) -> Result<(), TaskError> {
    note(&format!("ping {n} {}", now_ms()))
}

/// At most 5 runs a second per customer.
#[artel::task(rate_limit_global = "5/s", rate_limit_key = "{customer}")]
async fn sync(customer: String) -> Result<(), TaskError> {
    note(&format!("sync {customer} {}", now_ms()))
}

/// One call of a tenant's; notes it finished.
#[artel::task]
async fn job(tenant: String, n: u32) -> Result<(), TaskError> {
    note(&format!("job {tenant} {n}"))
}

/// At most two runs of one tenant at once; notes when each started and ended.
#[artel::task(max_running_per_group = 2)]
async fn crawl(tenant: String) -> Result<(), TaskError> {
    note(&format!("crawl {tenant} +1 {}", now_ms()))?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    note(&format!("crawl {tenant} -1 {}", now_ms()))
}

fn registry() -> Registry {
    Registry::new().with(price).with(ping).with(sync).with(job).with(crawl)
}

/// Not a test: with the parent's environment, this process is a worker until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_child() {
    let Ok(url) = std::env::var(URL) else { return };
    let connection = artel::connect(&url).await.expect("connect");
    // A worker with the default prefetch for its concurrency, or 4 slots and 4 prefetched
    // (two workers then share a backlog).
    let config = match std::env::var(CONCURRENCY).ok().and_then(|n| n.parse().ok()) {
        Some(concurrency) => WorkerConfig { concurrency, ..WorkerConfig::default() },
        None => WorkerConfig { concurrency: 4, prefetch: 4, ..WorkerConfig::default() },
    };
    let worker = connection.worker(registry(), config).build().expect("worker");
    let pool = Pool::builder().build().expect("pool");
    worker.run(&pool, Stop::default()).await.expect("run");
}

fn workers(n: usize, url: &str, runs: &Path) -> Vec<WorkerProcess> {
    workers_of(n, None, url, runs)
}

fn workers_of(n: usize, concurrency: Option<usize>, url: &str, runs: &Path) -> Vec<WorkerProcess> {
    let concurrency = concurrency.map(|n| n.to_string()).unwrap_or_default();
    let env = [(URL, url.as_ref()), (RUNS, runs.as_os_str()), (CONCURRENCY, concurrency.as_ref())];
    (0..n).map(|_| support::self_worker(&env)).collect()
}

fn lines(runs: &Path, prefix: &str) -> Vec<String> {
    let text = std::fs::read_to_string(runs).unwrap_or_default();
    text.lines().filter(|l| l.starts_with(prefix)).map(str::to_owned).collect()
}

/// The runs file beside a scratch broker, removed at the end.
struct RunsFile(PathBuf);

impl RunsFile {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("artel-test-runs-{}", uuid::Uuid::new_v4())))
    }
}

impl Drop for RunsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn result(app: &App, id: &str) -> artel::TaskResult {
    let result = app.backend().results().wait(id, Duration::from_secs(30)).await.expect("finished");
    assert_eq!(result.status, artel::State::Success, "{result:?}");
    result
}

async fn a_memoized_call_with_the_same_arguments_does_not_run_again(url: &str) {
    let runs = RunsFile::new();
    let app = App::connect(url).await.expect("connect");
    let _workers = workers(1, url, &runs.0);
    let first = result(&app, price::delay(&app, "ab".to_owned()).await.expect("send").id()).await;
    let again = result(&app, price::delay(&app, "ab".to_owned()).await.expect("send").id()).await;
    assert_eq!((&first.result, &again.result), (&json!(200), &json!(200)));
    assert_eq!(first.extra.get("cached"), None, "the first call ran");
    assert_eq!(again.extra.get("cached"), Some(&json!(true)), "the second was answered from the cache");
    assert_eq!(lines(&runs.0, "price"), ["price ab"], "the body ran once");

    let other = result(&app, price::delay(&app, "abc".to_owned()).await.expect("send").id()).await;
    assert_eq!(other.result, json!(300), "other arguments run");
    // Under one cache key, calls share a result whatever their arguments.
    for sku in ["k1", "different"] {
        let keyed = price::s(sku.to_owned()).with(|s| s.cache_key("eur")).delay(&app).await.expect("send");
        assert_eq!(result(&app, keyed.id()).await.result, json!(200), "{sku}: the first keyed call's price");
    }
    assert_eq!(lines(&runs.0, "price"), ["price ab", "price abc", "price k1"]);

    let (code, out, err) = artel(url, &["cache", "clear", "--task", "price", "--json"]);
    assert_eq!(code, 0, "{err}");
    let cleared: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(cleared["cleared"], 3, "{out}");
    result(&app, price::delay(&app, "ab".to_owned()).await.expect("send").id()).await;
    assert_eq!(lines(&runs.0, "price").len(), 4, "cleared: it ran again");
}

/// The largest number of `times` (ms) inside any window of one second.
fn busiest_second(times: &[u128]) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    (0..sorted.len()).map(|i| sorted[i..].iter().take_while(|t| **t < sorted[i] + 1000).count()).max().unwrap_or(0)
}

fn stamps(runs: &Path, prefix: &str) -> Vec<u128> {
    lines(runs, prefix).iter().filter_map(|l| l.rsplit(' ').next()?.parse().ok()).collect()
}

async fn a_global_rate_limit_holds_across_two_workers(url: &str) {
    let runs = RunsFile::new();
    let app = App::connect(url).await.expect("connect");
    let mut ids = Vec::new();
    for n in 0..500 {
        ids.push(ping::delay(&app, n).await.expect("send").id().to_owned());
    }
    let started = Instant::now();
    let _workers = workers(2, url, &runs.0);
    for id in &ids {
        let deadline = Duration::from_secs(60).saturating_sub(started.elapsed());
        let done = app.backend().results().wait(id, deadline).await.expect("all 500 finish within 60 s");
        assert_eq!(done.status, artel::State::Success, "{done:?}");
    }
    let took = started.elapsed();
    let times = stamps(&runs.0, "ping");
    assert_eq!(times.len(), 500, "each ran once");
    let busiest = busiest_second(&times);
    eprintln!("500 pings in {took:?}, at most {busiest} in one second");
    assert!(busiest <= 51, "at most 50 (+1) in any second: {busiest}");
    assert!(took >= Duration::from_secs(9), "500 at 50/s take 10 s: {took:?}");

    // Per key: each customer's runs 200 ms apart, the two customers side by side.
    for _ in 0..5 {
        for customer in ["a", "b"] {
            sync::delay(&app, customer.to_owned()).await.expect("send");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines(&runs.0, "sync").len() < 10 {
        assert!(Instant::now() < deadline, "10 syncs ran within 30 s: {:?}", lines(&runs.0, "sync"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (a, b) = (stamps(&runs.0, "sync a"), stamps(&runs.0, "sync b"));
    for times in [&a, &b] {
        let mut sorted = times.clone();
        sorted.sort_unstable();
        assert!(sorted.windows(2).all(|w| w[1] - w[0] >= 150), "one customer's runs 200 ms apart: {sorted:?}");
    }
    let (a_last, b_first) = (a.iter().max().copied().unwrap_or(0), b.iter().min().copied().unwrap_or(0));
    assert!(b_first < a_last, "customer b did not wait for a's limit: {a:?} {b:?}");
}

async fn a_tenants_few_calls_pass_another_tenants_backlog(url: &str) {
    let runs = RunsFile::new();
    let app = App::connect(url).await.expect("connect");
    let calls = |tenant: &str, count: u32| -> Vec<Message> {
        let now = SystemClock.now();
        let call = |n| job::s(tenant.to_owned(), n).with(|s| s.group_key(tenant)).into_signature().expect("encoded");
        (0..count).map(|n| call(n).to_message(now, "fairness-test")).collect()
    };
    let backlog = calls("a", 20_000);
    for batch in backlog.chunks(1000) {
        app.backend().broker().publish("celery", batch).await.expect("publish a's backlog");
    }
    let _worker = workers_of(1, Some(10), url, &runs.0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines(&runs.0, "job a").len() < 100 {
        assert!(Instant::now() < deadline, "the worker runs a's calls");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = lines(&runs.0, "job").len();
    app.backend().broker().publish("celery", &calls("b", 20)).await.expect("publish b's calls");
    while lines(&runs.0, "job b").len() < 20 {
        assert!(Instant::now() < deadline, "b's 20 calls finish within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = lines(&runs.0, "job");
    let last_b = done.iter().rposition(|line| line.starts_with("job b")).unwrap_or(0);
    let a_meanwhile = done[before..last_b].iter().filter(|line| line.starts_with("job a")).count();
    eprintln!("b's 20 calls finished while {a_meanwhile} of a's ran");
    assert!(a_meanwhile < 1000, "b waited for {a_meanwhile} of a's calls");
}

/// The most runs noted under `prefix` at once (`+1`/`-1` lines with a time).
fn most_at_once(runs: &Path, prefix: &str) -> i32 {
    let mut events: Vec<(u128, i32)> = lines(runs, prefix)
        .iter()
        .filter_map(|line| {
            let mut words = line.rsplit(' ');
            let at = words.next()?.parse().ok()?;
            Some((at, words.next()?.parse().ok()?))
        })
        .collect();
    // An end and a start at the same millisecond did not overlap.
    events.sort_unstable();
    events.iter().scan(0, |running, (_, step)| Some(*running + *step).inspect(|now| *running = *now)).max().unwrap_or(0)
}

async fn a_tenant_runs_at_most_its_cap_at_once(url: &str) {
    let runs = RunsFile::new();
    let app = App::connect(url).await.expect("connect");
    let mut ids = Vec::new();
    for tenant in ["a", "b"] {
        for _ in 0..10 {
            let call = crawl::s(tenant.to_owned()).with(|s| s.group_key(tenant)).delay(&app).await.expect("send");
            ids.push(call.id().to_owned());
        }
    }
    // Without a group, a capped task is not capped.
    let free: Vec<String> = {
        let mut free = Vec::new();
        for _ in 0..6 {
            free.push(crawl::delay(&app, "free".to_owned()).await.expect("send").id().to_owned());
        }
        free
    };
    let _workers = workers(2, url, &runs.0);
    for id in ids.iter().chain(&free) {
        result(&app, id).await;
    }
    let (a, b, all) =
        (most_at_once(&runs.0, "crawl a "), most_at_once(&runs.0, "crawl b "), most_at_once(&runs.0, "crawl"));
    eprintln!("at most {a} of a's and {b} of b's at once; {all} in all");
    assert_eq!(lines(&runs.0, "crawl a +1").len(), 10, "each of a's ran once");
    assert_eq!((a, b), (2, 2), "each tenant ran two at once, never more");
    assert!(all >= 3, "the tenants ran side by side: {all}");
    assert!(most_at_once(&runs.0, "crawl free ") >= 3, "ungrouped calls are not capped");
}

/// `artel worker --max-running-per-group 1`: a tenant's calls of a task that declares no
/// cap run one at a time, ungrouped calls beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_worker_flag_caps_every_task_per_group() {
    let scratch = brokers::sqlite(QUERY);
    let app = App::connect(&scratch.url).await.expect("connect");
    let sleep = |group: Option<&str>| {
        let call = artel::Signature::new("sleep").with_args(vec![json!(0.3)]);
        match group {
            Some(group) => call.group_key(group),
            None => call,
        }
    };
    let mut grouped = Vec::new();
    let mut free = Vec::new();
    for _ in 0..3 {
        grouped.push(app.send(sleep(Some("tenant-1"))).await.expect("send"));
        free.push(app.send(sleep(None)).await.expect("send"));
    }
    let _worker = WorkerProcess::start(&scratch.url, &["-c", "8", "--max-running-per-group", "1"]);
    // Each run as (start, end) in ms: its result's time less its run time.
    let span = |result: &artel::TaskResult| {
        let end = result.date_done.map(|at| at.timestamp_millis()).unwrap_or_default();
        let runtime = result.extra.get("runtime").and_then(serde_json::Value::as_f64).unwrap_or_default();
        (end - (runtime * 1000.0) as i64, end)
    };
    let mut runs = Vec::new();
    for id in &grouped {
        runs.push(span(&result(&app, id).await));
    }
    runs.sort_unstable();
    assert!(runs.windows(2).all(|w| w[1].0 >= w[0].1 - 50), "tenant-1's runs never overlapped: {runs:?}");
    let mut free_runs = Vec::new();
    for id in &free {
        free_runs.push(span(&result(&app, id).await));
    }
    let (first_end, last_start) =
        (free_runs.iter().map(|r| r.1).min().unwrap_or(0), free_runs.iter().map(|r| r.0).max().unwrap_or(0));
    assert!(last_start < first_end, "ungrouped calls ran side by side: {free_runs:?}");
}

const QUERY: &str = "poll_ms=10";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sqlite_a_memoized_call_with_the_same_arguments_does_not_run_again() {
    let scratch = brokers::sqlite(QUERY);
    a_memoized_call_with_the_same_arguments_does_not_run_again(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_redis_a_memoized_call_with_the_same_arguments_does_not_run_again() {
    let Some(scratch) = brokers::redis(QUERY) else { return };
    a_memoized_call_with_the_same_arguments_does_not_run_again(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_memoized_call_with_the_same_arguments_does_not_run_again() {
    let Some(scratch) = brokers::postgres(QUERY) else { return };
    a_memoized_call_with_the_same_arguments_does_not_run_again(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sqlite_a_global_rate_limit_holds_across_two_workers() {
    let scratch = brokers::sqlite(QUERY);
    a_global_rate_limit_holds_across_two_workers(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_redis_a_global_rate_limit_holds_across_two_workers() {
    let Some(scratch) = brokers::redis(QUERY) else { return };
    a_global_rate_limit_holds_across_two_workers(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_global_rate_limit_holds_across_two_workers() {
    let Some(scratch) = brokers::postgres(QUERY) else { return };
    a_global_rate_limit_holds_across_two_workers(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sqlite_a_tenants_few_calls_pass_another_tenants_backlog() {
    let scratch = brokers::sqlite(QUERY);
    a_tenants_few_calls_pass_another_tenants_backlog(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_redis_a_tenants_few_calls_pass_another_tenants_backlog() {
    let Some(scratch) = brokers::redis(QUERY) else { return };
    a_tenants_few_calls_pass_another_tenants_backlog(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_tenants_few_calls_pass_another_tenants_backlog() {
    let Some(scratch) = brokers::postgres(QUERY) else { return };
    a_tenants_few_calls_pass_another_tenants_backlog(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_sqlite_a_tenant_runs_at_most_its_cap_at_once() {
    let scratch = brokers::sqlite(QUERY);
    a_tenant_runs_at_most_its_cap_at_once(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_redis_a_tenant_runs_at_most_its_cap_at_once() {
    let Some(scratch) = brokers::redis(QUERY) else { return };
    a_tenant_runs_at_most_its_cap_at_once(&scratch.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgres_a_tenant_runs_at_most_its_cap_at_once() {
    let Some(scratch) = brokers::postgres(QUERY) else { return };
    a_tenant_runs_at_most_its_cap_at_once(&scratch.url).await;
}
