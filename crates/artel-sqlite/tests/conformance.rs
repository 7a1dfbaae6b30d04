//! The conformance suite against `sqlite://` on a fresh file per test.

use std::sync::Arc;

use artel_broker_tests::{Capabilities, Fixture, ScratchDb, conformance};
use artel_core::SystemClock;
use artel_sqlite::{SqliteBroker, SqliteConfig};

/// Failures kept per queue: small, so the suite sees older ones dropped.
const FAILED_KEPT: u32 = 3;

fn sqlite() -> Fixture {
    let db = ScratchDb::new("conformance");
    let config = SqliteConfig { failed_kept: FAILED_KEPT, ..SqliteConfig::default() };
    let broker = SqliteBroker::open_with(db.path(), config, Arc::new(SystemClock)).expect("open");
    Fixture {
        broker: Arc::new(broker.clone()),
        backend: Arc::new(broker.clone()),
        failed: Some((Arc::new(broker.clone()), FAILED_KEPT)),
        prefix: "t-".to_owned(),
        admin: Some(Arc::new(broker.clone())),
        inspect: Some(Arc::new(broker.clone())),
        capabilities: Capabilities::NATIVE,
        cleanup: Box::new(db),
    }
}

conformance!(sqlite());
