//! The conformance suite against `sqlite://` on a fresh file per test.

use std::sync::Arc;
use std::time::Duration;

use artel_broker_tests::{Capabilities, Fixture, Leases, SLOW_POLL, ScratchDb, SlowPolling, conformance};
use artel_core::{Broker, SystemClock};
use artel_sqlite::{SqliteBroker, SqliteConfig};

/// Failures kept per queue and task records kept: small, so the suite sees older ones dropped.
const KEPT: u32 = 3;

fn sqlite() -> Fixture {
    let db = ScratchDb::new("conformance");
    let config = SqliteConfig { failed_kept: KEPT, history_kept: KEPT, ..SqliteConfig::default() };
    let broker = SqliteBroker::open_with(db.path(), config, Arc::new(SystemClock)).expect("open");
    Fixture {
        backend: broker.backend(),
        kept: KEPT,
        prefix: "t-".to_owned(),
        leases: Some(leases(db.path())),
        slow_polling: slow_polling(db.path()),
        capabilities: Capabilities::NATIVE,
        cleanup: Box::new(db),
    }
}

/// Other worker processes on the same file, with short leases.
fn leases(path: &std::path::Path) -> Leases {
    let (path, lease) = (path.to_owned(), Duration::from_millis(600));
    let config = SqliteConfig { lease, poll_interval: Duration::from_millis(20), ..SqliteConfig::default() };
    Leases {
        lease,
        open: Box::new(move || {
            let broker = SqliteBroker::open_with(&path, config, Arc::new(SystemClock)).expect("open");
            Box::pin(async move { Arc::new(broker) as Arc<dyn Broker> })
        }),
    }
}

/// Another connection to the file that would look for messages and results once an hour.
fn slow_polling(path: &std::path::Path) -> SlowPolling {
    let path = path.to_owned();
    let config = SqliteConfig { poll_interval: SLOW_POLL, result_poll: SLOW_POLL, ..SqliteConfig::default() };
    SlowPolling {
        open: Box::new(move || {
            let broker = SqliteBroker::open_with(&path, config, Arc::new(SystemClock)).expect("open");
            Box::pin(std::future::ready(broker.backend()))
        }),
    }
}

conformance!(sqlite());
