//! Whatever another program writes into the messages table, one worker's consume runs it
//! or dead-letters it: never lost, never an error that would stop the worker.

use artel_broker_tests::ScratchDb;
use artel_broker_tests::hostile::{consume_until_dead, envelopes};
use artel_core::Admin;
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
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let db = ScratchDb::new("hostile");
            let broker = SqliteBroker::open(db.path()).expect("open");
            insert_raw(&db, &envelope);
            let dead = || async {
                let counts = broker.queue_counts().await.expect("counts");
                counts.iter().map(|c| c.dead).sum::<u64>() == 1
            };
            consume_until_dead(&broker, "q", dead).await;
            let counts = broker.queue_counts().await.expect("counts");
            let left: u64 = counts.iter().map(|c| c.ready + c.delayed + c.leased).sum();
            assert_eq!(left, 0, "{counts:?}");
        });
    }
}
