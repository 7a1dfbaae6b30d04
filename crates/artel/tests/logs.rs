//! What a worker logs: one line per task outcome, with the error's chain of causes; and
//! the trace context: the producer's trace continues in each run's `task` span and in
//! what the run publishes (a chain's next step), so logs inside a task carry the trace
//! and task ids.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use artel::core::{TraceContext, trace};
use artel::{App, Registry, TaskError, chain};
use serde_json::Value;

#[artel::task]
async fn fine() -> u32 {
    7
}

#[derive(Debug, thiserror::Error)]
#[error("could not load the report")]
struct LoadError(#[source] std::io::Error);

#[artel::task]
async fn broken() -> Result<u32, TaskError> {
    let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "report.csv is missing");
    Err(LoadError(missing).into())
}

/// Collects every log line the process writes.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn events(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
    }

    fn outcome(&self, message: &str, id: &str) -> Option<Value> {
        self.events().into_iter().find(|e| e["fields"]["message"] == message && e["fields"]["id"] == id)
    }

    /// The span of the line logging `message`.
    fn span_of(&self, message: &str) -> Value {
        let line = self.events().into_iter().find(|e| e["fields"]["message"] == message);
        line.unwrap_or_else(|| panic!("no line {message:?}"))["span"].clone()
    }
}

/// Every line the process logs, as JSON: one subscriber for the tests of this file.
fn lines() -> Lines {
    static LINES: OnceLock<Lines> = OnceLock::new();
    LINES
        .get_or_init(|| {
            let lines = Lines::default();
            let writer = lines.clone();
            tracing_subscriber::fmt().json().with_writer(move || writer.clone()).init();
            lines
        })
        .clone()
}

#[artel::task]
async fn first(x: u32) -> u32 {
    tracing::info!("inside first");
    x + 1
}

#[artel::task]
async fn second(x: u32) -> u32 {
    tracing::info!("inside second");
    x * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outcome_is_one_line_with_name_id_runtime_and_the_errors_chain() {
    let lines = lines();
    let app = App::local(Registry::new().with(fine).with(broken)).expect("app");
    let ok = fine::delay(&app).await.expect("sent");
    ok.get(Duration::from_secs(10)).await.expect("7");
    let bad = broken::delay(&app).await.expect("sent");
    bad.get(Duration::from_secs(10)).await.expect_err("failed");
    app.shutdown().await;

    let succeeded = lines.outcome("succeeded", ok.id()).expect("a succeeded line");
    assert_eq!(succeeded["level"], "INFO");
    assert_eq!(succeeded["fields"]["task"], "fine");
    assert!(succeeded["fields"]["runtime"].is_string(), "{succeeded}");
    let failed = lines.outcome("failed", bad.id()).expect("a failed line");
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["fields"]["task"], "broken");
    assert_eq!(failed["fields"]["error"], "RuntimeError: could not load the report");
    assert_eq!(failed["fields"]["chain"], "caused by: report.csv is missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_producer_through_each_step_of_a_chain() {
    let lines = lines();
    let app = App::local(Registry::new().with(first).with(second)).expect("app");

    // The producer's span: a send inside it continues its trace.
    let producer = TraceContext::root();
    let workflow = chain([first::s(1).into_signature().expect("args"), artel::Signature::new("second")]);
    let id = trace::scope(producer.clone(), app.send(workflow)).await.expect("sent");
    let result = app.backend().results().wait(&id, Duration::from_secs(10)).await.expect("ran");
    assert_eq!(result.result, serde_json::json!(4));
    app.shutdown().await;

    let (a, b) = (lines.span_of("inside first"), lines.span_of("inside second"));
    assert_eq!(a["name"], "task");
    assert_eq!((a["task"].as_str(), b["task"].as_str()), (Some("first"), Some("second")));
    assert!(a["id"].is_string() && a["id"] != b["id"], "each run names its task id: {a} {b}");
    let trace_id = producer.trace_hex();
    assert_eq!(a["trace_id"], trace_id.as_str(), "the first step continues the producer's trace");
    assert_eq!(b["trace_id"], trace_id.as_str(), "the next step too");
}
