//! Opening: processes that create the same new database at the same moment all succeed
//! (a worker and a producer started together used to see "database is locked").

use artel_broker_tests::ScratchDb;
use artel_sqlite::SqliteBroker;

#[test]
fn connections_racing_to_create_one_file_all_open_it() {
    for round in 0..10 {
        let db = ScratchDb::new("open-race");
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let path = db.path().to_owned();
                std::thread::spawn(move || SqliteBroker::open(&path).map(drop))
            })
            .collect();
        for opener in openers {
            let opened = opener.join().expect("no panic");
            assert!(opened.is_ok(), "round {round}: {opened:?}");
        }
    }
}
