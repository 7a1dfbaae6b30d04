//! What a worker logs: one line per task outcome, with the error's chain of causes.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artel::{App, Registry, TaskError};
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outcome_is_one_line_with_name_id_runtime_and_the_errors_chain() {
    let lines = Lines::default();
    let writer = lines.clone();
    tracing_subscriber::fmt().json().with_writer(move || writer.clone()).init();
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
