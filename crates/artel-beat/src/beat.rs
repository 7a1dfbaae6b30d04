//! [`Beat`]: sends each entry's fires as tasks.
//!
//! Invariants: every fire is sent with the task id [`Entry::task_id`] gives it; an
//! entry's last fire is advanced only after its sends succeeded (a failed send is tried
//! again at the next tick, with the same id); a new entry, or one without a recorded
//! last fire, owes nothing before the moment it was first seen.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use artel_core::canvas::{self, Lineage};
use artel_core::{Backend, BrokerError, Clock, SystemClock, Timestamp};
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

/// The longest a beat sleeps: it looks for a changed schedule at least this often.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Sends a schedule's fires; see the module docs.
pub struct Beat {
    backend: Backend,
    schedule: Schedule,
    state: Option<PathBuf>,
    clock: Arc<dyn Clock>,
    origin: String,
    last: HashMap<String, Timestamp>,
}

impl std::fmt::Debug for Beat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Beat").field("entries", &self.schedule.entries.len()).field("state", &self.state).finish()
    }
}

impl Beat {
    /// A beat sending to `backend`'s broker, with no entries yet.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            schedule: Schedule::default(),
            state: None,
            clock: Arc::new(SystemClock),
            origin: format!("beat.{}", std::process::id()),
            last: HashMap::new(),
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

    /// Keeps each entry's last fire in `path` (JSON), so a restarted beat applies the
    /// missed-run policies to what passed while it was down.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        self.last = read_state(&path);
        self.state = Some(path);
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

    /// Sends every fire due now; returns how many were sent. A send that fails is
    /// logged and tried again at the next tick.
    pub async fn tick(&mut self) -> Result<usize, BeatError> {
        let now = self.clock.now();
        let mut sent = 0;
        let mut changed = false;
        for entry in &self.schedule.entries {
            let Some(last) = self.last.get(&entry.name).copied() else {
                self.last.insert(entry.name.clone(), now);
                changed = true;
                continue;
            };
            let fires = entry.due(Some(last), now);
            let mut ok = true;
            for fire in &fires {
                match self.send(entry, *fire, now).await {
                    Ok(()) => sent += 1,
                    Err(error) => {
                        tracing::warn!(entry = %entry.name, %fire, %error, "could not send; trying again at the next tick");
                        ok = false;
                        break;
                    }
                }
            }
            // Fire times up to now are sent or, by the missed policy, skipped.
            if ok && entry.next_after(last).is_some_and(|next| next <= now) {
                self.last.insert(entry.name.clone(), now);
                changed = true;
            }
        }
        if changed {
            self.save()?;
        }
        Ok(sent)
    }

    async fn send(&self, entry: &Entry, fire: Timestamp, now: Timestamp) -> Result<(), BrokerError> {
        let mut signature = entry.signature.clone().task_id(entry.task_id(fire));
        if !entry.jitter.is_zero() {
            signature = signature.countdown(entry.jitter.mul_f64(fastrand::f64()));
        }
        let plan = canvas::plan(signature, None, &Lineage::default(), now, &self.origin)
            .map_err(|e| BrokerError::new(artel_core::BrokerErrorKind::Other, e.to_string()))?;
        let ttl = Some(artel_core::RESULT_EXPIRES);
        canvas::publish(self.backend.broker().as_ref(), self.backend.chords().as_ref(), vec![plan], ttl).await?;
        tracing::info!(entry = %entry.name, task = %entry.signature.task, %fire, "sent");
        Ok(())
    }

    /// Ticks until `shutdown` fires, sleeping until the next fire (at most a second);
    /// `reload` is asked each time for a changed schedule.
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
            let pause =
                next.and_then(|next| (next - now).to_std().ok()).map_or(LOOK_EVERY, |until| until.min(LOOK_EVERY));
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    fn save(&self) -> Result<(), BeatError> {
        let Some(path) = &self.state else { return Ok(()) };
        let state: HashMap<&str, String> = self.last.iter().map(|(k, v)| (k.as_str(), v.to_rfc3339())).collect();
        let text = serde_json::to_string_pretty(&state).unwrap_or_default();
        let partial = path.with_extension("partial");
        let write = std::fs::write(&partial, text).and_then(|()| std::fs::rename(&partial, path));
        write.map_err(|source| BeatError::State { path: path.display().to_string(), source })
    }
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
}
