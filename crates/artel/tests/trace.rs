//! Trace context across a workflow: the producer's trace continues in each run's `task`
//! span and in what the run publishes (a chain's next step), and logs inside a task carry
//! the trace and task ids. (Parent links between spans: the `otel` test.)

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artel::core::TraceContext;
use artel::core::trace;
use artel::{App, Registry, chain};
use serde_json::Value;

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
    /// The `task` span of the line logging `message`.
    fn span_of(&self, message: &str) -> Value {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let line = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
            .find(|e| e["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no line {message:?} in\n{text}"));
        line["span"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_producer_through_each_step_of_a_chain() {
    let lines = Lines::default();
    let writer = lines.clone();
    tracing_subscriber::fmt().json().with_writer(move || writer.clone()).init();
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
