//! The conformance suite against `sqlite://` on a fresh file per test.

use std::sync::Arc;

use artel_broker_tests::{Fixture, ScratchDb, conformance};
use artel_sqlite::SqliteBroker;

fn sqlite() -> Fixture {
    let db = ScratchDb::new("conformance");
    let broker = SqliteBroker::open(db.path()).expect("open");
    Fixture {
        broker: Arc::new(broker.clone()),
        backend: Arc::new(broker),
        prefix: "t-".to_owned(),
        cleanup: Box::new(db),
    }
}

conformance!(sqlite());
