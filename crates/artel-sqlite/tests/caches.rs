//! The cache suite (artel-broker-tests) on a SQLite file: values shared by every process
//! that opens it.

use std::time::Duration;

use artel_broker_tests::ScratchDb;
use artel_sqlite::{SqliteBroker, SqliteCache};

fn scratch() -> Option<(SqliteCache, ScratchDb)> {
    let db = ScratchDb::new("cache");
    let broker = SqliteBroker::open(db.path()).expect("open the database");
    Some((broker.cache_store(), db))
}

artel_broker_tests::cache_suite!(scratch(), ttl = Duration::from_millis(200));
