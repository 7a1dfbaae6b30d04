//! [`Supervisor`]: keeps every copy of every program running.
//!
//! Each copy is a slot with a task of its own: start the program (in its own process
//! group, output prefixed `[name.copy]`), wait for it to exit, restart it after a backoff
//! that doubles from `backoff.0` to `backoff.1` (reset once a run lasted
//! `healthy_after`), and give up, marking it failed, after `crash_loop` quick exits in a
//! row. Stopping a slot sends SIGTERM to the program's whole process group, then SIGKILL
//! after the grace period, so no grandchild is left behind.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::program::Program;

/// Timings of a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// SIGTERM to SIGKILL.
    pub grace: Duration,
    /// Restart pauses: doubling from the first to the second.
    pub backoff: (Duration, Duration),
    /// A run this long counts as healthy: the backoff and the crash count start over.
    pub healthy_after: Duration,
    /// Quick exits in a row after which a copy is marked failed and left stopped.
    pub crash_loop: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(10),
            backoff: (Duration::from_millis(100), Duration::from_secs(30)),
            healthy_after: Duration::from_secs(10),
            crash_loop: 5,
        }
    }
}

/// Where a copy is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Its program runs.
    Running,
    /// It exited and waits to be restarted.
    Backoff,
    /// It exited too quickly too often: left stopped until a reload changes it.
    Failed,
    /// Stopped by the supervisor.
    Stopped,
}

/// One copy as `artel supervise status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyStatus {
    /// The service.
    pub service: String,
    /// Which copy (0-based).
    pub copy: usize,
    /// Where it is in its life.
    pub state: State,
    /// Its program's pid while running.
    pub pid: Option<u32>,
    /// Times it was restarted.
    pub restarts: u32,
    /// When its current run started (unix seconds), while running.
    pub since: Option<u64>,
    /// How its last run ended.
    pub last_exit: Option<String>,
}

/// The copies' statuses, shared by the slots and whoever reports them.
#[derive(Debug, Clone, Default)]
pub struct Board(Arc<Mutex<BTreeMap<(String, usize), CopyStatus>>>);

impl Board {
    /// Every copy, by service and copy number.
    pub fn snapshot(&self) -> Vec<CopyStatus> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, usize), CopyStatus>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, service: &str, copy: usize, change: impl FnOnce(&mut CopyStatus)) {
        let mut board = self.lock();
        let status = board.entry((service.to_owned(), copy)).or_insert_with(|| CopyStatus {
            service: service.to_owned(),
            copy,
            state: State::Backoff,
            pid: None,
            restarts: 0,
            since: None,
            last_exit: None,
        });
        change(status);
    }

    fn remove(&self, service: &str, copy: usize) {
        self.lock().remove(&(service.to_owned(), copy));
    }
}

struct Slot {
    program: Program,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Runs programs in slots; see the module docs.
pub struct Supervisor {
    settings: Settings,
    board: Board,
    slots: BTreeMap<(String, usize), Slot>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").field("settings", &self.settings).field("copies", &self.slots.len()).finish()
    }
}

impl Supervisor {
    /// A supervisor running nothing yet.
    pub fn new(settings: Settings) -> Self {
        Self { settings, board: Board::default(), slots: BTreeMap::new() }
    }

    /// The copies' statuses, live.
    pub fn board(&self) -> Board {
        self.board.clone()
    }

    /// Converges on `programs`: copies no longer wanted are stopped, copies whose
    /// program changed are restarted one at a time, new copies are started.
    pub async fn apply(&mut self, programs: &[Program]) {
        let wanted: BTreeMap<(String, usize), &Program> =
            programs.iter().flat_map(|p| (0..p.copies).map(move |copy| ((p.name.clone(), copy), p))).collect();
        let gone: Vec<(String, usize)> = self.slots.keys().filter(|key| !wanted.contains_key(*key)).cloned().collect();
        for key in gone {
            self.stop_slot(&key).await;
            self.board.remove(&key.0, key.1);
        }
        for (key, program) in wanted {
            match self.slots.get(&key) {
                // Running, or failed (crash loop) with the same command: left as it is.
                Some(slot) if slot.program.runs_as(program) => continue,
                Some(_) => self.stop_slot(&key).await,
                None => {}
            }
            self.start_slot(key, program.clone());
        }
    }

    /// Stops every copy (SIGTERM, then SIGKILL after the grace period) and waits.
    pub async fn stop(&mut self) {
        for slot in self.slots.values() {
            slot.stop.cancel();
        }
        for (_, slot) in std::mem::take(&mut self.slots) {
            let _ = slot.task.await;
        }
    }

    fn start_slot(&mut self, key: (String, usize), program: Program) {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_slot(program.clone(), key.1, self.settings, self.board.clone(), stop.clone()));
        self.slots.insert(key, Slot { program, stop, task });
    }

    async fn stop_slot(&mut self, key: &(String, usize)) {
        if let Some(slot) = self.slots.remove(key) {
            slot.stop.cancel();
            let _ = slot.task.await;
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One copy's life; see the module docs.
async fn run_slot(program: Program, copy: usize, settings: Settings, board: Board, stop: CancellationToken) {
    let name = program.name.as_str();
    let mut backoff = settings.backoff.0;
    let mut quick_exits = 0;
    let mut restarts = 0;
    loop {
        let started = Instant::now();
        let exit = match spawn(&program, copy) {
            Err(error) => format!("could not start: {error}"),
            Ok(mut child) => {
                let pid = child.id();
                board.update(name, copy, |s| {
                    (s.state, s.pid, s.since, s.restarts) = (State::Running, pid, Some(unix_now()), restarts);
                });
                tracing::info!(service = name, copy, pid, "started");
                tokio::select! {
                    status = child.wait() => {
                        // Whatever it left behind in its group goes with it.
                        kill_group(pid, rustix::process::Signal::KILL);
                        status.map_or_else(|e| e.to_string(), |s| s.to_string())
                    }
                    _ = stop.cancelled() => {
                        terminate(&mut child, pid, settings.grace).await;
                        board.update(name, copy, |s| (s.state, s.pid, s.since) = (State::Stopped, None, None));
                        tracing::info!(service = name, copy, "stopped");
                        return;
                    }
                }
            }
        };
        if started.elapsed() >= settings.healthy_after {
            (quick_exits, backoff) = (0, settings.backoff.0);
        } else {
            quick_exits += 1;
        }
        restarts += 1;
        if quick_exits >= settings.crash_loop {
            tracing::error!(service = name, copy, %exit, quick_exits, "exits as soon as it starts: marked failed, not restarted");
            board.update(name, copy, |s| {
                (s.state, s.pid, s.since, s.last_exit) = (State::Failed, None, None, Some(exit))
            });
            return;
        }
        tracing::warn!(service = name, copy, %exit, retry_in = ?backoff, "exited; restarting");
        board.update(name, copy, |s| {
            (s.state, s.pid, s.since, s.last_exit) = (State::Backoff, None, None, Some(exit));
        });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.cancelled() => {
                board.update(name, copy, |s| s.state = State::Stopped);
                return;
            }
        }
        backoff = (backoff * 2).min(settings.backoff.1);
    }
}

/// Starts a copy in a process group of its own, its output forwarded with a prefix.
fn spawn(program: &Program, copy: usize) -> std::io::Result<tokio::process::Child> {
    let (command, args) = program.command.split_first().ok_or_else(|| std::io::Error::other("empty command"))?;
    let mut child = tokio::process::Command::new(command)
        .args(args)
        .envs(&program.env)
        .env("ARTEL_SERVICE_COPY", copy.to_string())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let prefix = format!("[{}.{copy}]", program.name);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward(out, prefix.clone(), false));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward(err, prefix, true));
    }
    Ok(child)
}

/// Copies lines from a child, each prefixed with its service and copy.
async fn forward(from: impl AsyncRead + Unpin, prefix: String, stderr: bool) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if stderr {
            eprintln!("{prefix} {line}");
        } else {
            println!("{prefix} {line}");
        }
    }
}

/// Signals the process group a copy leads (its pid is the group's id).
fn kill_group(pid: Option<u32>, signal: rustix::process::Signal) {
    if let Some(group) = pid.and_then(|pid| rustix::process::Pid::from_raw(pid.try_into().unwrap_or(0))) {
        // ESRCH (the group is already gone) is what we want anyway.
        let _ = rustix::process::kill_process_group(group, signal);
    }
}

/// SIGTERM to the copy's process group, SIGKILL after `grace` (and to whatever of the
/// group outlived its leader).
async fn terminate(child: &mut tokio::process::Child, pid: Option<u32>, grace: Duration) {
    kill_group(pid, rustix::process::Signal::TERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
    kill_group(pid, rustix::process::Signal::KILL);
}
