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

#[test]
fn a_path_that_cannot_be_opened_says_why_and_what_to_do() {
    let missing = std::env::temp_dir().join(format!("artel-no-such-dir-{}", uuid::Uuid::new_v4())).join("a.db");
    let error = SqliteBroker::open(&missing).expect_err("no directory").to_string();
    assert!(error.contains("does not exist: create it (mkdir -p"), "{error}");
    let dir = std::env::temp_dir();
    let error = SqliteBroker::open(&dir).expect_err("a directory").to_string();
    assert!(error.contains("is a directory: name a file in it"), "{error}");
}
