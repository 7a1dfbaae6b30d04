//! The cross-process suite every lock backend runs: its test binary starts copies of
//! itself as children ([`spawn`]) that hammer or hold one lock, and checks what they saw.
//!
//! A backend's test file has a `lock_child` test that, when [`role`] says it is a child,
//! opens the backend's locks on the scratch namespace and [`play`]s the role.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use artel_lock::{Fenced, Locks};

/// Acquisitions per hammering process.
pub const ROUNDS: u64 = 1000;

const DIR: &str = "ARTEL_LOCK_TEST_DIR";
const NAME: &str = "ARTEL_LOCK_TEST_NAME";
const MODE: &str = "ARTEL_LOCK_TEST_MODE";

/// A scratch directory and a namespace (key prefix, file) unique to one test; the
/// directory is removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    /// Where the children count turns and report holding.
    pub dir: PathBuf,
    /// A unique name: the backend's key prefix or file stem.
    pub name: String,
}

impl Scratch {
    /// A new scratch space for `backend`.
    pub fn new(backend: &str) -> Self {
        let name = format!("artel-test-lock-{backend}-{}-{}", std::process::id(), fastrand::u64(..));
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self { dir, name }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a child process was started to do.
#[derive(Debug)]
pub struct Role {
    /// `hammer` or `hold`.
    pub mode: String,
    /// The parent's scratch directory.
    pub dir: PathBuf,
    /// The parent's scratch name.
    pub name: String,
}

/// This process's role, when the parent started it as a child.
pub fn role() -> Option<Role> {
    Some(Role {
        mode: std::env::var(MODE).ok()?,
        dir: PathBuf::from(std::env::var_os(DIR)?),
        name: std::env::var(NAME).ok()?,
    })
}

/// Plays `role` on `locks`: hammer takes turns [`ROUNDS`] times; hold takes the lock,
/// writes its fence to `dir/held` and sleeps until killed.
pub async fn play(role: &Role, locks: &dyn Locks) {
    if role.mode == "hold" {
        let guard = locks.acquire("shared", Duration::from_secs(10)).await.expect("acquire");
        std::fs::write(role.dir.join("held"), guard.fence().to_string()).expect("note");
        tokio::time::sleep(Duration::from_secs(60)).await;
        return;
    }
    take_turns(locks, &role.dir, ROUNDS).await;
}

/// Starts this test binary's `lock_child` test as a child playing `mode`.
pub fn spawn(scratch: &Scratch, mode: &str) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["lock_child", "--exact", "--quiet", "--test-threads=1"])
        .env(DIR, &scratch.dir)
        .env(NAME, &scratch.name)
        .env(MODE, mode)
        .stdout(Stdio::null())
        .spawn()
        .expect("start a child")
}

/// Takes the lock on `shared` `rounds` times, each time checking that nobody else is
/// inside (a `create_new` marker in `dir`) and that the fence grew, and counting the
/// turn in `dir/counter`: run from several processes, the counter ends at their total.
pub async fn take_turns(locks: &dyn Locks, dir: &Path, rounds: u64) {
    let mut last = 0;
    for _ in 0..rounds {
        let guard = locks.acquire("shared", Duration::from_secs(30)).await.expect("acquire");
        assert!(guard.fence() > last, "fences grow: {} after {last}", guard.fence());
        last = guard.fence();
        std::fs::OpenOptions::new().write(true).create_new(true).open(dir.join("inside")).expect("alone inside");
        let counter = dir.join("counter");
        let n: u64 = std::fs::read_to_string(&counter).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        std::fs::write(&counter, (n + 1).to_string()).expect("count");
        std::fs::remove_file(dir.join("inside")).expect("leave");
        drop(guard);
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// How a backend numbers its fences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fences {
    /// One per acquisition of the key: 1, 2, 3, ...
    Counted,
    /// A revision shared by all keys (etcd): growing by at least one per acquisition.
    Revisions,
}

/// Two hammering processes never overlap; afterwards the next fence follows their
/// 2 × [`ROUNDS`] acquisitions (each process checks its own fences strictly grow).
pub async fn two_processes_never_overlap(scratch: &Scratch, locks: &dyn Locks, fences: Fences) {
    let children: Vec<_> = (0..2).map(|_| spawn(scratch, "hammer")).collect();
    for mut child in children {
        assert!(child.wait().expect("child").success(), "a child saw an overlap or a shrinking fence");
    }
    assert_eq!(read_u64(&scratch.dir.join("counter")), Some(2 * ROUNDS));
    let next = locks.acquire("shared", Duration::from_secs(5)).await.expect("free");
    match fences {
        Fences::Counted => assert_eq!(next.fence(), 2 * ROUNDS + 1, "one fence per acquisition"),
        Fences::Revisions => assert!(next.fence() > 2 * ROUNDS, "{} after 2,000 acquisitions", next.fence()),
    }
}

/// A holder killed with SIGKILL frees its lock: at once for kernel-held locks, within
/// `lease` for leased ones (which, while it lived, it renewed past its first lease).
pub async fn a_killed_holder_frees_the_lock(scratch: &Scratch, locks: &dyn Locks, lease: Option<Duration>) {
    let mut holder = spawn(scratch, "hold");
    let deadline = Instant::now() + Duration::from_secs(15);
    let held = loop {
        if let Some(fence) = read_u64(&scratch.dir.join("held")) {
            break fence;
        }
        assert!(Instant::now() < deadline, "the holder never took the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if let Some(lease) = lease {
        tokio::time::sleep(lease + lease / 2).await;
    }
    assert!(locks.try_acquire("shared").await.expect("try").is_none(), "held while its holder lives");
    holder.kill().expect("kill -9 the holder");
    holder.wait().expect("reaped");
    let within = lease.map_or(Duration::from_secs(2), |lease| lease * 2);
    let guard = locks.acquire("shared", within).await.expect("free once its holder died");
    assert!(guard.fence() > held, "{} after {held}", guard.fence());
}

/// A fenced value grows only, and a writer with a smaller fence than the last one to
/// write is refused even with a larger value.
pub async fn fenced_values_refuse_stale_writers(fenced: &dyn Fenced) {
    assert_eq!(fenced.read("fire").await.expect("read"), None);
    assert!(fenced.advance("fire", 1, 10).await.expect("first"));
    assert!(!fenced.advance("fire", 1, 10).await.expect("same value"), "values only grow");
    assert!(fenced.advance("fire", 2, 11).await.expect("newer holder"));
    assert!(!fenced.advance("fire", 1, 12).await.expect("stale holder"), "a smaller fence is refused");
    assert!(fenced.advance("fire", 2, 12).await.expect("same holder again"));
    assert_eq!(fenced.read("fire").await.expect("read"), Some(12));
    assert_eq!(fenced.read("other").await.expect("read"), None, "keys are separate");
}
