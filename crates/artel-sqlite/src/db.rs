//! The one connection of a process to the database file, on its own thread.
//!
//! Operations are closures sent to the thread; it runs everything that has queued up in
//! one `BEGIN IMMEDIATE` transaction and replies after the commit (group commit). Many
//! small writes from many tasks (acks, results, publishes) thus cost one fsync-free WAL
//! commit, and callers never block a tokio thread on SQLite.
//!
//! When another process holds the write lock, the transaction waits (busy timeout) and is
//! retried with backoff; callers see an error only after `LOCK_PATIENCE`.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use artel_core::{BrokerError, BrokerErrorKind, BrokerResult};
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

/// Schema versions, applied in order at open (tracked in `PRAGMA user_version`).
const MIGRATIONS: [&str; 9] = [
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_canvas_and_revoke.sql"),
    include_str!("../migrations/0003_failed.sql"),
    include_str!("../migrations/0004_locks.sql"),
    include_str!("../migrations/0005_history.sql"),
    include_str!("../migrations/0006_worker_stop.sql"),
    include_str!("../migrations/0007_control_board.sql"),
    include_str!("../migrations/0008_cache_and_rates.sql"),
    include_str!("../migrations/0009_fair_groups.sql"),
];

/// Operations one transaction may carry.
const MAX_BATCH: usize = 512;

/// How long a write waits for another process's lock before giving up with an error.
const LOCK_PATIENCE: Duration = Duration::from_secs(30);

/// Handle to the database thread; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    ops: mpsc::Sender<Box<dyn Op>>,
    path: PathBuf,
}

/// One unit of work in a batch: run inside the transaction, answer after the commit.
trait Op: Send {
    fn run(&mut self, tx: &Transaction<'_>);
    fn answer(self: Box<Self>, commit: Result<(), &BrokerError>);
}

struct Call<F, R> {
    work: Option<F>,
    outcome: Option<rusqlite::Result<R>>,
    reply: oneshot::Sender<BrokerResult<R>>,
    what: &'static str,
}

impl<F, R> Op for Call<F, R>
where
    F: FnOnce(&Transaction<'_>) -> rusqlite::Result<R> + Send,
    R: Send,
{
    fn run(&mut self, tx: &Transaction<'_>) {
        if let Some(work) = self.work.take() {
            self.outcome = Some(work(tx));
        }
    }

    fn answer(mut self: Box<Self>, commit: Result<(), &BrokerError>) {
        let answer = match (commit, self.outcome.take()) {
            (Err(e), _) => Err(BrokerError::new(e.kind(), format!("{}: {e}", self.what))),
            (Ok(()), Some(Ok(value))) => Ok(value),
            (Ok(()), Some(Err(e))) => Err(sql_error(self.what, e)),
            (Ok(()), None) => Err(BrokerError::new(BrokerErrorKind::Other, format!("{}: not run", self.what))),
        };
        let _ = self.reply.send(answer);
    }
}

/// Maps SQLite failures to kinds the runtime can act on, with what to do about them.
pub(crate) fn sql_error(what: &str, e: rusqlite::Error) -> BrokerError {
    let kind = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => BrokerErrorKind::Timeout,
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => BrokerErrorKind::Connection,
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => BrokerErrorKind::Corrupt,
        Some(ErrorCode::DiskFull) => {
            let what = format!("{what}: the disk is full; workers pause and resume once space is freed");
            return BrokerError::new(BrokerErrorKind::StorageFull, what).with_source(e);
        }
        _ => BrokerErrorKind::Other,
    };
    BrokerError::new(kind, what.to_owned()).with_source(e)
}

fn cannot_open(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly))
}

/// Why a database file cannot be opened, as far as the file system says, with what to do;
/// SQLite itself only says "unable to open database file".
fn open_hint(path: &Path) -> Option<String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if path.is_dir() {
        return Some(format!(
            "{} is a directory: name a file in it, e.g. sqlite://{}/artel.db",
            path.display(),
            path.display()
        ));
    }
    if !dir.is_dir() {
        return Some(format!(
            "the directory {} does not exist: create it (mkdir -p {}) or name another path",
            dir.display(),
            dir.display()
        ));
    }
    let read_only = rustix::fs::statvfs(dir).is_ok_and(|fs| fs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY));
    if read_only {
        return Some(format!("{} is on a read-only file system: put the database on a writable one", dir.display()));
    }
    let writable = |p: &Path| rustix::fs::access(p, rustix::fs::Access::WRITE_OK).is_ok();
    if !writable(dir) || (path.exists() && !writable(path)) {
        return Some(format!(
            "{} is not writable by this user (SQLite also writes -wal and -shm files beside it): change its permissions or name another path",
            if path.exists() && !writable(path) { path } else { dir }.display()
        ));
    }
    None
}

impl Db {
    /// Opens (creating if needed) the database at `path`, migrates it, starts its thread.
    pub(crate) fn open(path: &Path) -> BrokerResult<Self> {
        let what = format!("opening SQLite database {}", path.display());
        // Processes creating the same new file at once: switching it to WAL takes a lock
        // SQLite does not wait for, so a busy open is retried like any other write.
        let (started, mut pause) = (Instant::now(), Duration::from_millis(10));
        let conn = loop {
            match open_migrated(path) {
                Ok(conn) => break conn,
                Err(e) if is_busy(&e) && started.elapsed() < LOCK_PATIENCE => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(e) => {
                    let what = match open_hint(path) {
                        Some(hint) if cannot_open(&e) => format!("{what}: {hint}"),
                        _ => what,
                    };
                    return Err(sql_error(&what, e));
                }
            }
        };
        let (ops, inbox) = mpsc::channel::<Box<dyn Op>>();
        std::thread::Builder::new()
            .name("artel-sqlite".to_owned())
            .spawn(move || serve(conn, inbox))
            .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "starting the SQLite thread").with_source(e))?;
        Ok(Self { ops, path: path.to_owned() })
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` in the next batch transaction and returns its result after the commit.
    pub(crate) async fn call<F, R>(&self, what: &'static str, work: F) -> BrokerResult<R>
    where
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let call = Call { work: Some(work), outcome: None, reply, what };
        self.ops.send(Box::new(call)).map_err(|_| closed(what))?;
        answer.await.map_err(|_| closed(what))?
    }
}

fn closed(what: &str) -> BrokerError {
    BrokerError::new(BrokerErrorKind::Closed, format!("{what}: the SQLite broker was closed"))
}

fn open_migrated(path: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    configure(&mut conn)?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // WAL + NORMAL: a commit survives a process crash; only an OS crash may lose the last ones.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Fewer, larger checkpoints (each one syncs), a page cache for the hot part of the
    // queue indexes, and reads through a bounded memory map (file pages, reclaimable by
    // the OS; not heap): together ~1.6x the tasks/s of the defaults on 2 cores.
    conn.pragma_update(None, "wal_autocheckpoint", 8_000)?;
    // SQLite keeps the log file at its largest size; cut it back to 32 MiB whenever a
    // checkpoint restarts it, so a burst does not hold tens of MiB of disk for good.
    conn.pragma_update(None, "journal_size_limit", 32 << 20)?;
    if let Ok(mb) = std::env::var("ARTEL_JSL") {
        conn.pragma_update(None, "journal_size_limit", mb.parse::<i64>().unwrap_or(64) << 20)?;
    }
    conn.pragma_update(None, "cache_size", -16_384)?;
    conn.pragma_update(None, "mmap_size", 268_435_456)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, sql) in (1..).zip(MIGRATIONS).skip(usize::try_from(version).unwrap_or(0)) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index)?;
    }
    tx.commit()
}

fn serve(mut conn: Connection, inbox: mpsc::Receiver<Box<dyn Op>>) {
    while let Ok(first) = inbox.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let committed = run_batch(&mut conn, &mut batch);
        for op in batch {
            op.answer(committed.as_ref().map(|_| ()));
        }
    }
}

fn run_batch(conn: &mut Connection, batch: &mut [Box<dyn Op>]) -> BrokerResult<()> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => {
                for op in batch.iter_mut() {
                    op.run(&tx);
                }
                return tx.commit().map_err(|e| sql_error("committing", e));
            }
            Err(e) if is_busy(&e) && started.elapsed() < LOCK_PATIENCE => {
                tracing::warn!("the database is locked by another process; retrying in {pause:?}");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(e) => return Err(sql_error("starting a transaction (another process may hold the lock)", e)),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}
