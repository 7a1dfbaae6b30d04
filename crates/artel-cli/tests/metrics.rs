//! What a worker tells monitoring. Its Prometheus metrics: after 10 successes, 2
//! failures and 1 retry on sqlite://, `/metrics` (parsed by the Prometheus project's own
//! OpenMetrics parser, from Python's prometheus_client) counts exactly those outcomes and
//! runs. Its task spans: `artel worker` with `OTEL_EXPORTER_OTLP_ENDPOINT` posts them, in
//! the producer's trace, to an OTLP/HTTP receiver.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use artel::pool::Pool;
use artel::{App, Context, Registry, Stop, TaskError, WorkerConfig};
use artel_broker_tests::ScratchDb;

#[artel::task]
async fn fine() -> Result<(), TaskError> {
    Ok(())
}

#[artel::task]
async fn boom() -> Result<(), TaskError> {
    Err(TaskError::msg("boom"))
}

/// Fails once, asking for a retry, then succeeds.
#[artel::task]
async fn flaky(ctx: Context) -> Result<(), TaskError> {
    if ctx.retries() == 0 { Err(TaskError::retry("not yet").after(Duration::from_millis(10))) } else { Ok(()) }
}

/// Samples by (name, labels).
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// The samples of an OpenMetrics text, read by prometheus_client's parser; `None` when
/// no Python with it is configured.
fn parse(text: &str) -> Option<Samples> {
    let Ok(python) = std::env::var("ARTEL_PYTHON") else {
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "ARTEL_PYTHON is required");
        eprintln!("skipped: set ARTEL_PYTHON to a Python with prometheus_client");
        return None;
    };
    let script = "import json, sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
        print(json.dumps([[s.name, s.labels, s.value] for f in parse(sys.stdin.read()) for s in f.samples]))";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("parsed");
    assert!(out.status.success(), "the parser refused the exposition:\n{text}");
    let samples: Vec<(String, BTreeMap<String, String>, f64)> = serde_json::from_slice(&out.stdout).expect("json");
    Some(samples.into_iter().map(|(name, labels, value)| ((name, labels), value)).collect())
}

fn scrape(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to /metrics");
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("application/openmetrics-text"), "{response}");
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_each_outcome_and_run_exactly() {
    let db = ScratchDb::new("metrics");
    let url = format!("sqlite://{}?poll_ms=10", db.path().display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
    let connection = artel::connect(&url).await.expect("connect");
    let registry = Registry::new().with(fine).with(boom).with(flaky);
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let worker = connection.worker(registry, WorkerConfig::default()).metrics(Some(listen)).build().expect("worker");
    let stop = Stop::default();
    let running = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let pool = Pool::builder().build().expect("pool");
            worker.run(&pool, stop).await
        })
    };

    let app = App::connect(&url).await.expect("connect");
    let mut ids = Vec::new();
    for _ in 0..9 {
        ids.push(fine::delay(&app).await.expect("send").id().to_owned());
    }
    for _ in 0..2 {
        ids.push(boom::delay(&app).await.expect("send").id().to_owned());
    }
    ids.push(flaky::delay(&app).await.expect("send").id().to_owned());
    for id in &ids {
        app.backend().results().wait(id, Duration::from_secs(20)).await.expect("finished");
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // the last acks follow the results
    let text = scrape(port);
    stop.warm.cancel();
    running.await.expect("joined").expect("worker ran");
    let Some(samples) = parse(&text) else { return };

    let count = |name: &str, pairs: &[(&str, &str)]| samples.get(&(name.to_owned(), labels(pairs))).copied();
    let q = ("queue", "celery");
    assert_eq!(count("artel_tasks_total", &[("task", "fine"), q, ("outcome", "succeeded")]), Some(9.0), "{text}");
    assert_eq!(count("artel_tasks_total", &[("task", "flaky"), q, ("outcome", "succeeded")]), Some(1.0));
    assert_eq!(count("artel_tasks_total", &[("task", "flaky"), q, ("outcome", "retried")]), Some(1.0));
    assert_eq!(count("artel_tasks_total", &[("task", "boom"), q, ("outcome", "failed")]), Some(2.0));
    let total = |name: &str, outcome: Option<&str>| -> f64 {
        samples
            .iter()
            .filter(|((n, l), _)| n == name && outcome.is_none_or(|o| l.get("outcome").map(String::as_str) == Some(o)))
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(total("artel_tasks_total", Some("succeeded")), 10.0);
    assert_eq!(total("artel_tasks_total", Some("failed")), 2.0);
    assert_eq!(total("artel_tasks_total", Some("retried")), 1.0);
    assert_eq!(total("artel_tasks_total", None), 13.0, "one outcome per message taken");
    assert_eq!(total("artel_tasks_received_total", None), 13.0);
    assert_eq!(total("artel_task_runtime_seconds_count", None), 13.0, "one run per message");
    assert_eq!(count("artel_task_runtime_seconds_count", &[("task", "flaky"), q]), Some(2.0));
    assert_eq!(total("artel_task_queue_wait_seconds_count", None), 13.0);
    assert_eq!(count("artel_tasks_held", &[]), Some(0.0), "nothing held once all settled");
    assert_eq!(count("artel_worker_up", &[]), Some(1.0));
    assert!(count("artel_worker_start_time_seconds", &[]).is_some_and(|t| t > 1.7e9));
}

/// An OTLP/HTTP receiver: answers every POST with 200 and hands over (path, body).
fn otlp_receiver() -> (u16, std::sync::mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = std::io::BufReader::new(stream);
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let mut stream = reader.into_inner();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
            let _ = tx.send((path, body));
        }
    });
    (port, rx)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn the_worker_exports_task_spans_over_otlp_as_the_environment_says() {
    let (port, received) = otlp_receiver();
    let db = ScratchDb::new("otlp");
    let url = format!("sqlite://{}", db.path().display());
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let artel = |args: &[&str], otel: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_artel"));
        command.args(["--broker", &url]).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        // The producer runs inside a trace of its caller's (as CI systems pass it).
        command.env("TRACEPARENT", format!("00-{trace_id}-00f067aa0ba902b7-01"));
        if otel {
            command.env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{port}"));
            command.env("OTEL_SERVICE_NAME", "otlp-test-worker");
        }
        let out = command.output().expect("run artel");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let id = artel(&["call", "echo", "--args", "[\"traced\"]"], false);
    artel(&["worker", "--burst"], true);
    let (path, body) = received.recv_timeout(Duration::from_secs(20)).expect("spans posted");
    assert_eq!(path, "/v1/traces");
    assert!(contains(&body, "run echo") && contains(&body, &id), "the run's span, named and with its task id");
    assert!(contains(&body, "otlp-test-worker"), "the service named by OTEL_SERVICE_NAME");
    let trace_bytes: Vec<u8> =
        (0..16).map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).expect("hex")).collect();
    assert!(body.windows(16).any(|w| w == trace_bytes.as_slice()), "in the producer's trace");
}
