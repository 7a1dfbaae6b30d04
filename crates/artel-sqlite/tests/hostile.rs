//! Whatever another program writes into the messages table, one worker's consume runs it
//! or dead-letters it: never lost, never an error that would stop the worker.

use artel_broker_tests::ScratchDb;
use artel_broker_tests::hostile::{block_on, consume_until_dead, dead_and_left, envelopes};
use artel_sqlite::SqliteBroker;
use proptest::prelude::*;

fn insert_raw(db: &ScratchDb, envelope: &[u8]) {
    let conn = rusqlite::Connection::open(db.path()).expect("open");
    conn.execute(
        "INSERT INTO messages (queue, priority, visible_at, task_id, envelope) VALUES ('q', 0, 0, 'raw', ?1)",
        [envelope],
    )
    .expect("insert");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_envelope_is_run_or_dead_lettered_never_lost(envelope in envelopes()) {
        block_on(async {
            let db = ScratchDb::new("hostile");
            let broker = SqliteBroker::open(db.path()).expect("open");
            insert_raw(&db, &envelope);
            consume_until_dead(&broker, "q", || async { dead_and_left(&broker).await.0 == 1 }).await;
            assert_eq!(dead_and_left(&broker).await, (1, 0), "dead, nothing left");
        });
    }
}
