//! SQLite locks with real processes sharing one database file: mutual exclusion, expiry
//! after a killed holder, growing fences (fenced values and unique keys: the conformance
//! suite).

use std::path::PathBuf;
use std::time::Duration;

use artel_broker_tests::locks::{self, Fences, Scratch};
use artel_sqlite::SqliteBroker;

const LEASE: Duration = Duration::from_millis(500);

fn open(dir: &std::path::Path) -> SqliteBroker {
    SqliteBroker::open(dir.join("locks.db")).expect("open the database")
}

/// Not a test: the child role (hammer or hold the lock); run as a test it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_child() {
    let Some(role) = locks::role() else { return };
    locks::play(&role, &open(&PathBuf::from(&role.dir)).locks(LEASE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_taking_a_sqlite_lock_a_thousand_times_each_never_overlap() {
    let scratch = Scratch::new("sqlite");
    locks::two_processes_never_overlap(&scratch, &open(&scratch.dir).locks(LEASE), Fences::Counted).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_sqlite_lock_frees_itself_within_its_lease() {
    let scratch = Scratch::new("sqlite");
    locks::a_killed_holder_frees_the_lock(&scratch, &open(&scratch.dir).locks(LEASE), Some(LEASE)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_sqlite_lease_is_reported_and_the_lock_left_to_its_new_holder() {
    use artel_lock::{LockError, Locks};
    let scratch = Scratch::new("sqlite");
    let broker = open(&scratch.dir);
    let guard = broker.locks(Duration::from_millis(150)).acquire("lost", Duration::from_secs(1)).await.expect("held");
    assert!(guard.check().is_ok());
    // Someone else takes the row, as after a lapse during a long pause.
    let db = rusqlite::Connection::open(scratch.dir.join("locks.db")).expect("open");
    db.busy_timeout(Duration::from_secs(5)).expect("busy timeout");
    assert_eq!(db.execute("UPDATE lock SET token = 'someone-else' WHERE key = 'lost'", []).expect("take"), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = guard.check().expect_err("lost");
    assert!(matches!(err, LockError::Lost { .. }), "{err}");
    drop(guard);
    tokio::time::sleep(Duration::from_millis(100)).await; // the release runs after the drop
    let holder: String = db.query_row("SELECT token FROM lock WHERE key = 'lost'", [], |r| r.get(0)).expect("row");
    assert_eq!(holder, "someone-else", "a lost guard never frees another's lock");
}
