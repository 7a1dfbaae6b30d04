//! The conformance suite against `sqlite://` on a fresh file per test.

use std::path::PathBuf;
use std::sync::Arc;

use artel_broker_tests::{Fixture, conformance};
use artel_sqlite::SqliteBroker;

/// Removes the database file and its WAL companions when the test ends.
struct TempDb(PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

fn sqlite() -> Fixture {
    let path = std::env::temp_dir().join(format!("artel-conformance-{}.db", uuid::Uuid::new_v4()));
    let broker = SqliteBroker::open(&path).expect("open");
    Fixture {
        broker: Arc::new(broker.clone()),
        backend: Arc::new(broker),
        prefix: "t-".to_owned(),
        cleanup: Box::new(TempDb(path)),
    }
}

conformance!(sqlite());
