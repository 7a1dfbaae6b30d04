//! Highly available beat with real processes: three `artel beat`s and a worker on one
//! broker, a 1 s schedule for about 30 s, the leader killed with SIGKILL twice. Every fire
//! second runs exactly once (the worker's `exec` appends its task id to a side-effect
//! file): no duplicate, no gap, across both takeovers.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use artel::beat::Schedule;
use artel_broker_tests::ScratchDb;

/// Fires, takeovers and the drain fit in this.
const RUN: Duration = Duration::from_secs(30);

struct Beats {
    children: Vec<Option<Child>>,
    logs: Vec<PathBuf>,
}

impl Beats {
    fn start(url: &str, schedule: &Path, dir: &Path) -> Self {
        let mut beats = Beats { children: Vec::new(), logs: Vec::new() };
        for n in 0..3 {
            let log = dir.with_extension(format!("beat{n}.log"));
            let child = Command::new(env!("CARGO_BIN_EXE_artel"))
                .args(["--broker", url, "beat", "--lease", "2s", "--schedule"])
                .arg(schedule)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log file"))
                .spawn()
                .expect("start a beat");
            beats.children.push(Some(child));
            beats.logs.push(log);
        }
        beats
    }

    /// How many times beat `n` said it took the lead.
    fn leads(&self, n: usize) -> usize {
        std::fs::read_to_string(&self.logs[n]).unwrap_or_default().matches("leading").count()
    }

    /// Waits for a live beat that took the lead more often than `before` says, and
    /// returns it.
    fn new_leader(&self, before: &[usize]) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let led = (0..self.children.len()).find(|&n| self.children[n].is_some() && self.leads(n) > before[n]);
            if let Some(n) = led {
                return n;
            }
            assert!(Instant::now() < deadline, "no beat took the lead within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn counts(&self) -> Vec<usize> {
        (0..self.children.len()).map(|n| self.leads(n)).collect()
    }

    fn kill(&mut self, n: usize) {
        let mut child = self.children[n].take().expect("alive");
        child.kill().expect("kill -9 the leader");
        child.wait().expect("reaped");
    }
}

impl Drop for Beats {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for log in &self.logs {
            let _ = std::fs::remove_file(log);
        }
    }
}

fn every_fire_runs_once_while_leaders_are_killed(url: &str, scratch: &Path) {
    let runs = scratch.with_extension("runs");
    let schedule_path = scratch.with_extension("toml");
    let schedule = format!(
        "[[schedule]]\nname = \"tick\"\ntask = \"exec\"\nargs = [\"sh\", [\"-c\", \"echo $ARTEL_TASK_ID >> {}\"]]\n\
         every = \"1s\"\nmissed = \"catch-up\"\n",
        runs.display()
    );
    std::fs::write(&schedule_path, &schedule).expect("schedule");
    let entry = Schedule::parse(&schedule).expect("valid").entries.remove(0);

    let started = chrono::Utc::now();
    let _worker = support::WorkerProcess::start(url, &["--enable", "exec", "-c", "4"]);
    let mut beats = Beats::start(url, &schedule_path, scratch);
    let first = beats.new_leader(&[0, 0, 0]);
    std::thread::sleep(RUN / 3);
    let before = beats.counts();
    beats.kill(first);
    let second = beats.new_leader(&before);
    std::thread::sleep(RUN / 3);
    let before = beats.counts();
    beats.kill(second);
    let third = beats.new_leader(&before);
    std::thread::sleep(RUN / 3);
    drop(beats);
    let stopped = chrono::Utc::now();
    assert!(first != second && second != third, "each kill hands the lead to a live beat");

    // Each line is one run: the task id of one fire second.
    std::thread::sleep(Duration::from_secs(3)); // the last sends run
    let seconds_by_id: BTreeMap<String, i64> = (started.timestamp() - 1..=stopped.timestamp() + 1)
        .map(|s| {
            let at = chrono::DateTime::from_timestamp(s, 0).expect("a time").fixed_offset();
            (entry.task_id(at), s)
        })
        .collect();
    let text = std::fs::read_to_string(&runs).unwrap_or_default();
    let _ = std::fs::remove_file(&runs);
    let _ = std::fs::remove_file(&schedule_path);
    let mut ran: BTreeMap<i64, usize> = BTreeMap::new();
    for id in text.lines() {
        let second = seconds_by_id.get(id).unwrap_or_else(|| panic!("{id} is no fire of this run"));
        *ran.entry(*second).or_default() += 1;
    }
    let twice: Vec<_> = ran.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "fires run more than once: {twice:?}");
    let (Some(&from), Some(&to)) = (ran.keys().next(), ran.keys().last()) else { panic!("nothing ran") };
    let missing: Vec<i64> = (from..=to).filter(|s| !ran.contains_key(s)).collect();
    assert!(missing.is_empty(), "fire seconds without a run: {missing:?} (of {from}..={to})");
    assert!(ran.len() >= 25, "about 30 fires: {}", ran.len());
}

#[test]
fn on_sqlite_three_beats_send_each_fire_once_while_the_leader_is_killed_twice() {
    let db = ScratchDb::new("beat-ha");
    let url = format!("sqlite://{}?poll_ms=10", db.path().display());
    every_fire_runs_once_while_leaders_are_killed(&url, db.path());
}

#[test]
fn on_redis_three_beats_send_each_fire_once_while_the_leader_is_killed_twice() {
    let prefix = format!("artel-test-beat-ha-{}", uuid::Uuid::new_v4().simple());
    let scratch = std::env::temp_dir().join(&prefix);
    let _cleanup = support::RedisCleanup { prefix: prefix.clone(), runs: String::new() };
    let url = format!("{}?prefix={prefix}&poll_ms=10", support::redis_url());
    if support::artel(&url, &["queues"]).0 != 0 {
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "Redis is required");
        return eprintln!("skipped: no Redis");
    }
    every_fire_runs_once_while_leaders_are_killed(&url, &scratch);
}
