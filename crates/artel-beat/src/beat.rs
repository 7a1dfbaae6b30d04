//! [`Beat`]: sends each entry's fires as tasks, from one elected leader among any number
//! of beats.
//!
//! Invariants: every fire is sent with the task id [`Entry::task_id`] gives it. An
//! entry's last fire is recorded before its fires are sent, and on a shared backend the
//! record is a fenced value ([`artel_lock::Fenced`]) written under the leader's lock
//! fence: a beat that lost leadership without noticing (paused past its lease) is refused
//! the record and sends nothing, so each fire is sent once even across a leadership
//! change. A send that fails is kept and tried again each tick while this beat leads.
//! A new entry, or one without a recorded last fire, owes nothing before the moment it
//! was first seen.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use artel_core::canvas::{self, Lineage};
use artel_core::{Backend, BrokerError, Clock, State, SystemClock, TaskResult, Timestamp};
use artel_lock::{Coordination, Guard};
use tokio_util::sync::CancellationToken;

use crate::schedule::{Entry, Schedule};

/// Why a beat stopped.
#[derive(Debug, thiserror::Error)]
pub enum BeatError {
    /// The state file could not be written.
    #[error("cannot write the beat's state to {path}: {source}")]
    State {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The longest a leading beat sleeps: it looks for a changed schedule at least this often.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// How often a beat that does not lead tries to take the lead.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

/// How long the leader's lock outlives a leader that died, by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// Where last fires are remembered.
enum Memory {
    /// In this process, saved to a state file when one is set: one beat at a time.
    Local { path: Option<PathBuf>, last: HashMap<String, Timestamp> },
    /// Fenced values on a shared backend, written by the leader only.
    Shared { locks: Arc<dyn Coordination>, name: String, guard: Option<Guard> },
}

/// How long a leader's note is kept: a note older than that names no one.
const NOTE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Who took the lead of the beats of one name, noted in the result store when it did
/// (what the dashboard's schedules page shows).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaderNote {
    /// The leading beat: `beat.<pid>@<host>`.
    pub node: String,
    /// When it took the lead, in unix milliseconds.
    pub since_ms: i64,
    /// Its lock's fence.
    pub fence: u64,
}

impl LeaderNote {
    /// The result id the note of the beats named `name` is kept under.
    pub fn id(name: &str) -> String {
        format!("artel.beat.{name}.leader")
    }

    fn to_result(&self, name: &str) -> TaskResult {
        TaskResult::progress(&Self::id(name), State::Started, serde_json::to_value(self).unwrap_or_default())
    }

    /// The note of the beats named `name` on `backend`, if one leads (or led).
    pub async fn read(backend: &Backend, name: &str) -> Result<Option<Self>, BrokerError> {
        let stored = backend.results().get(&Self::id(name)).await?;
        Ok(stored.and_then(|result| serde_json::from_value(result.result).ok()))
    }
}

fn leader_node() -> String {
    format!("beat.{}@{}", std::process::id(), artel_core::hostname())
}

/// Sends a schedule's fires; see the module docs.
pub struct Beat {
    backend: Backend,
    schedule: Schedule,
    memory: Memory,
    clock: Arc<dyn Clock>,
    origin: String,
    /// Fires recorded whose send failed, to try again.
    unsent: Vec<(Entry, Timestamp)>,
}

impl std::fmt::Debug for Beat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let memory = match &self.memory {
            Memory::Local { path, .. } => format!("local {path:?}"),
            Memory::Shared { name, guard, .. } => format!("shared {name:?}, leading: {}", guard.is_some()),
        };
        f.debug_struct("Beat").field("entries", &self.schedule.entries.len()).field("memory", &memory).finish()
    }
}

impl Beat {
    /// A beat sending to `backend`'s broker, with no entries yet. When the backend offers
    /// locks, beats named `beat` on it elect one leader ([`Beat::leader`]); otherwise
    /// last fires are kept in this process only.
    pub fn new(backend: Backend) -> Self {
        let memory = match backend.locks() {
            Some(server) => Memory::Shared { locks: server.locks(DEFAULT_LEASE), name: "beat".to_owned(), guard: None },
            None => Memory::Local { path: None, last: HashMap::new() },
        };
        Self {
            backend,
            schedule: Schedule::default(),
            memory,
            clock: Arc::new(SystemClock),
            origin: format!("beat.{}", std::process::id()),
            unsent: Vec::new(),
        }
    }

    /// Adds `entry`.
    pub fn entry(mut self, entry: Entry) -> Self {
        self.schedule.entries.push(entry);
        self
    }

    /// Uses `schedule`'s entries.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Elects one leader among the beats sharing `name` on `locks`, each holding the lead
    /// with the locks' lease; their last fires are kept there as fenced values.
    pub fn leader(mut self, locks: Arc<dyn Coordination>, name: impl Into<String>) -> Self {
        self.memory = Memory::Shared { locks, name: name.into(), guard: None };
        self
    }

    /// Keeps each entry's last fire in `path` (JSON) instead, so a restarted beat applies
    /// the missed-run policies to what passed while it was down; one beat at a time.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.memory = Memory::Local { last: read_state(&path), path: Some(path) };
        self
    }

    /// Reads time from `clock` (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The entries and their next fire times.
    pub fn upcoming(&self) -> Vec<(&Entry, Option<Timestamp>)> {
        let now = self.clock.now();
        self.schedule.entries.iter().map(|e| (e, e.next_after(now))).collect()
    }

    /// Whether this beat sends: it leads, or it is the only one.
    pub fn leading(&self) -> bool {
        match &self.memory {
            Memory::Local { .. } => true,
            Memory::Shared { guard, .. } => guard.is_some(),
        }
    }

    /// Sends every fire due now, if this beat leads (taking the lead when it is free);
    /// returns how many were sent.
    pub async fn tick(&mut self) -> Result<usize, BeatError> {
        let now = self.clock.now();
        let Some(fence) = self.lead().await else { return Ok(0) };
        let mut sent = self.send_unsent(now).await;
        let entries = self.schedule.entries.clone();
        for entry in &entries {
            let last = match self.last_fire(&entry.name).await {
                Ok(last) => last,
                Err(error) => {
                    tracing::warn!(entry = %entry.name, %error, "cannot read the last fire; trying again at the next tick");
                    continue;
                }
            };
            let passed = last.is_none_or(|last| entry.next_after(last).is_some_and(|next| next <= now));
            if !passed {
                continue;
            }
            // Fire times up to now are sent or, by the missed policy, skipped.
            let fires = entry.due(last, now);
            if !self.record(&entry.name, fence, now).await? {
                return Ok(sent);
            }
            for fire in fires {
                match self.send(entry, fire, now).await {
                    Ok(()) => sent += 1,
                    Err(error) => {
                        tracing::warn!(entry = %entry.name, %fire, %error, "could not send; trying again at the next tick");
                        self.unsent.push((entry.clone(), fire));
                    }
                }
            }
        }
        Ok(sent)
    }

    /// This beat's fence while it leads (0 when it is the only one); takes the lead when
    /// it is free; `None` while another beat leads.
    async fn lead(&mut self) -> Option<u64> {
        let Memory::Shared { locks, name, guard } = &mut self.memory else { return Some(0) };
        if let Some(held) = guard {
            match held.check() {
                Ok(()) => return Some(held.fence()),
                Err(error) => {
                    tracing::error!(%error, "no longer leading");
                    *guard = None;
                    for (entry, fire) in self.unsent.drain(..) {
                        tracing::error!(entry = %entry.name, %fire, "a recorded fire was never sent");
                    }
                }
            }
        }
        match locks.try_acquire(&format!("beat.{name}")).await {
            Ok(Some(held)) => {
                let fence = held.fence();
                tracing::info!(%name, fence, "leading: this beat sends the schedule");
                *guard = Some(held);
                let note = LeaderNote { node: leader_node(), since_ms: self.clock.now().timestamp_millis(), fence };
                if let Err(error) = self.backend.results().store(&note.to_result(name), Some(NOTE_TTL)).await {
                    tracing::warn!(%error, "cannot note this beat as the leader (the dashboard will not show it)");
                }
                Some(fence)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "cannot reach the leader's lock; trying again");
                None
            }
        }
    }

    async fn last_fire(&self, entry: &str) -> Result<Option<Timestamp>, artel_lock::LockError> {
        match &self.memory {
            Memory::Local { last, .. } => Ok(last.get(entry).copied()),
            Memory::Shared { locks, name, .. } => {
                let ms = locks.read(&format!("beat.{name}.{entry}")).await?;
                Ok(ms.and_then(chrono::DateTime::from_timestamp_millis).map(|at| at.fixed_offset()))
            }
        }
    }

    /// Records `at` as `entry`'s last fire; `false` when a newer leader has written since
    /// (this beat then steps down).
    async fn record(&mut self, entry: &str, fence: u64, at: Timestamp) -> Result<bool, BeatError> {
        match &mut self.memory {
            Memory::Local { path, last } => {
                last.insert(entry.to_owned(), at);
                save(path.as_deref(), last)?;
                Ok(true)
            }
            Memory::Shared { locks, name, guard } => {
                match locks.advance(&format!("beat.{name}.{entry}"), fence, at.timestamp_millis()).await {
                    Ok(true) => Ok(true),
                    Ok(false) => {
                        tracing::error!(%entry, fence, "a newer leader recorded this entry: stepping down");
                        *guard = None;
                        Ok(false)
                    }
                    Err(error) => {
                        tracing::warn!(%entry, %error, "cannot record the last fire; trying again at the next tick");
                        Ok(false)
                    }
                }
            }
        }
    }

    async fn send_unsent(&mut self, now: Timestamp) -> usize {
        let mut sent = 0;
        for (entry, fire) in std::mem::take(&mut self.unsent) {
            match self.send(&entry, fire, now).await {
                Ok(()) => sent += 1,
                Err(_) => self.unsent.push((entry, fire)),
            }
        }
        sent
    }

    async fn send(&self, entry: &Entry, fire: Timestamp, now: Timestamp) -> Result<(), BrokerError> {
        let mut signature = entry.signature.clone().task_id(entry.task_id(fire));
        if !entry.jitter.is_zero() {
            signature = signature.countdown(entry.jitter.mul_f64(fastrand::f64()));
        }
        let plan = canvas::plan(signature, None, &Lineage::traced(), now, &self.origin)
            .map_err(|e| BrokerError::new(artel_core::BrokerErrorKind::Other, e.to_string()))?;
        let ttl = Some(artel_core::RESULT_EXPIRES);
        canvas::publish(self.backend.broker().as_ref(), self.backend.chords().as_ref(), vec![plan], ttl).await?;
        tracing::info!(entry = %entry.name, task = %entry.signature.task, %fire, "sent");
        Ok(())
    }

    /// Ticks until `shutdown` fires, sleeping until the next fire (at most a second);
    /// `reload` is asked each time for a changed schedule. A leader hands the lead over
    /// when it stops.
    pub async fn run(
        mut self,
        shutdown: CancellationToken,
        mut reload: impl FnMut() -> Option<Schedule>,
    ) -> Result<(), BeatError> {
        loop {
            if let Some(schedule) = reload() {
                tracing::info!(entries = schedule.entries.len(), "schedule changed");
                self.schedule = schedule;
            }
            self.tick().await?;
            let now = self.clock.now();
            let next = self.schedule.entries.iter().filter_map(|e| e.next_after(now)).min();
            let pause = match self.leading() {
                true => {
                    next.and_then(|next| (next - now).to_std().ok()).map_or(LOOK_EVERY, |until| until.min(LOOK_EVERY))
                }
                false => FOLLOW_EVERY,
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        if let Memory::Shared { guard, .. } = &mut self.memory
            && let Some(held) = guard.take()
        {
            tracing::info!(fence = held.fence(), "handing over the lead");
            drop(held);
            // The release runs on the runtime after the guard drops: give it a moment.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

fn save(path: Option<&Path>, last: &HashMap<String, Timestamp>) -> Result<(), BeatError> {
    let Some(path) = path else { return Ok(()) };
    let state: HashMap<&str, String> = last.iter().map(|(k, v)| (k.as_str(), v.to_rfc3339())).collect();
    let text = serde_json::to_string_pretty(&state).unwrap_or_default();
    let partial = path.with_extension("partial");
    let write = std::fs::write(&partial, text).and_then(|()| std::fs::rename(&partial, path));
    write.map_err(|source| BeatError::State { path: path.display().to_string(), source })
}

/// The last fires a state file records; an unreadable file records none (logged).
fn read_state(path: &Path) -> HashMap<String, Timestamp> {
    let Ok(text) = std::fs::read_to_string(path) else { return HashMap::new() };
    let parsed: Result<HashMap<String, String>, _> = serde_json::from_str(&text);
    match parsed {
        Ok(state) => state
            .into_iter()
            .filter_map(|(name, at)| chrono::DateTime::parse_from_rfc3339(&at).ok().map(|at| (name, at)))
            .collect(),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "ignoring an unreadable beat state file");
            HashMap::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use artel_core::memory::{MemoryBackend, MemoryBroker};
    use artel_core::{Broker, ManualClock, Queues};

    use super::*;

    fn at(text: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(text).expect("a time")
    }

    fn schedule(missed: &str) -> Schedule {
        let text = format!(
            "[[schedule]]\nname = \"tick\"\ntask = \"echo\"\nargs = [\"tick\"]\nevery = \"10s\"\nmissed = \"{missed}\"\n"
        );
        Schedule::parse(&text).expect("valid")
    }

    async fn sent_ids(broker: &MemoryBroker, n: usize) -> Vec<String> {
        let mut consumer = broker.consume(&Queues::one("celery"), 100).await.expect("consume");
        let mut ids = Vec::new();
        for _ in 0..n {
            let delivery = consumer.next().await.expect("a message");
            ids.push(delivery.message().headers.id.clone());
            delivery.ack().await.expect("ack");
        }
        ids
    }

    #[tokio::test]
    async fn fires_are_sent_once_each_with_their_derived_ids_and_a_restart_applies_the_missed_policy() {
        let broker = Arc::new(MemoryBroker::new());
        let backend = Backend::new(broker.clone(), MemoryBackend::new());
        let state = std::env::temp_dir().join(format!("artel-beat-{}.json", uuid::Uuid::new_v4()));
        let clock = Arc::new(ManualClock::new(at("2026-03-01T12:00:01Z")));
        let mut beat =
            Beat::new(backend.clone()).schedule(schedule("catch-up")).state_file(&state).clock(clock.clone());
        assert_eq!(beat.tick().await.expect("tick"), 0, "nothing is owed before the first fire");
        clock.advance(Duration::from_secs(9)); // 12:00:10
        assert_eq!(beat.tick().await.expect("tick"), 1);
        assert_eq!(beat.tick().await.expect("tick"), 0, "a fire is sent once");
        let entry = &schedule("catch-up").entries[0];
        assert_eq!(sent_ids(&broker, 1).await, vec![entry.task_id(at("2026-03-01T12:00:10Z"))]);
        drop(beat);

        // Down for 35 s: a restarted beat catches up on 20, 30 and 40 from the state file.
        clock.advance(Duration::from_secs(35)); // 12:00:45
        let mut restarted =
            Beat::new(backend.clone()).schedule(schedule("catch-up")).state_file(&state).clock(clock.clone());
        assert_eq!(restarted.tick().await.expect("tick"), 3);
        let expected: Vec<String> = ["12:00:20", "12:00:30", "12:00:40"]
            .iter()
            .map(|t| entry.task_id(at(&format!("2026-03-01T{t}Z"))))
            .collect();
        assert_eq!(sent_ids(&broker, 3).await, expected);

        // With `skip`, a second outage sends nothing for what it missed.
        clock.advance(Duration::from_secs(45)); // 12:01:30
        let mut skipping = Beat::new(backend).schedule(schedule("skip")).state_file(&state).clock(clock.clone());
        assert_eq!(skipping.tick().await.expect("tick"), 0);
        clock.advance(Duration::from_secs(10)); // 12:01:40
        assert_eq!(skipping.tick().await.expect("tick"), 1, "then fires on time again");
        let _ = std::fs::remove_file(&state);
    }

    #[tokio::test]
    async fn one_of_several_beats_leads_a_successor_catches_up_and_a_stale_leader_sends_nothing() {
        let broker = Arc::new(MemoryBroker::new());
        let backend = Backend::new(broker.clone(), MemoryBackend::new());
        let locks: Arc<dyn Coordination> = Arc::new(artel_lock::LocalLocks::new());
        let clock = Arc::new(ManualClock::new(at("2026-03-01T12:00:01Z")));
        let beat = || {
            Beat::new(backend.clone()).schedule(schedule("catch-up")).leader(locks.clone(), "ha").clock(clock.clone())
        };
        let (mut first, mut second) = (beat(), beat());
        assert_eq!(first.tick().await.expect("tick"), 0, "first seen: nothing owed");
        assert!(first.leading());
        clock.advance(Duration::from_secs(9)); // 12:00:10
        assert_eq!(second.tick().await.expect("tick"), 0, "a follower sends nothing");
        assert!(!second.leading());
        assert_eq!(first.tick().await.expect("tick"), 1);

        // The leader dies; the successor sends what fell due meanwhile, once each.
        drop(first);
        clock.advance(Duration::from_secs(25)); // 12:00:35
        assert_eq!(second.tick().await.expect("tick"), 2, "catches up on 20 and 30");
        let entry = &schedule("catch-up").entries[0];
        let expected: Vec<String> = ["12:00:10", "12:00:20", "12:00:30"]
            .iter()
            .map(|t| entry.task_id(at(&format!("2026-03-01T{t}Z"))))
            .collect();
        assert_eq!(sent_ids(&broker, 3).await, expected);

        // A newer leader (a larger fence) takes the entry over (its record at 12:00:35.001,
        // before it sends 12:00:40) while this one, paused past its lease, still believes
        // it leads: this one's record is refused and it sends nothing.
        let newer = second.lead().await.expect("leads") + 1;
        let taken_over = at("2026-03-01T12:00:35.001Z").timestamp_millis();
        assert!(locks.advance("beat.ha.tick", newer, taken_over).await.expect("advance"));
        clock.advance(Duration::from_secs(10)); // 12:00:45
        assert_eq!(second.tick().await.expect("tick"), 0, "a stale leader sends nothing");
        assert!(!second.leading(), "and steps down");
        assert_eq!(broker.len("celery").await.expect("len"), 0);
    }
}
