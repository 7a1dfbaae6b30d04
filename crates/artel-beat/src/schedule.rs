//! [`Schedule`]: periodic entries and when each fires, as pure functions of the time.
//!
//! Fire times are absolute and the same for every beat that reads the schedule: an
//! interval fires at the multiples of its period since the Unix epoch, a cron entry at
//! its pattern's times in its time zone. So a fire is named by (entry, fire time), and the
//! task id sent for it is derived from that name: two beats, or a beat that restarts,
//! send the same id for the same fire.

use std::str::FromStr;
use std::time::Duration;

use artel_core::{Signature, Timestamp};
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::Deserialize;
use serde_json::{Map, Value};

/// When an entry fires.
#[derive(Debug, Clone)]
pub enum When {
    /// At every multiple of this period since the Unix epoch.
    Every(Duration),
    /// At the pattern's times (seconds field optional), read in `zone`.
    Cron {
        /// The parsed pattern.
        cron: Box<Cron>,
        /// Its text, for listings.
        pattern: String,
        /// The time zone the pattern is read in.
        zone: Tz,
    },
}

/// What to do about fire times that passed while no beat ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// Forget them; fire at the next time (the default).
    Skip,
    /// Fire once now for all of them.
    RunOnce,
    /// Fire once for each of them (at most [`CATCH_UP_LIMIT`]).
    CatchUp,
}

/// The most missed fires one catch-up sends.
pub const CATCH_UP_LIMIT: usize = 1000;

/// One periodic task.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Unique in its schedule; names its fires.
    pub name: String,
    /// What is sent (task, arguments, options).
    pub signature: Signature,
    /// When.
    pub when: When,
    /// Missed fire times.
    pub missed: Missed,
    /// Each send waits a random time up to this after its fire time.
    pub jitter: Duration,
}

impl Entry {
    /// The first fire time after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let after = after.with_timezone(&Utc);
        let next = match &self.when {
            When::Every(period) => {
                let period_ms = i64::try_from(period.as_millis()).ok().filter(|ms| *ms > 0)?;
                let now_ms = after.timestamp_millis();
                let next_ms = (now_ms.div_euclid(period_ms) + 1).checked_mul(period_ms)?;
                Utc.timestamp_millis_opt(next_ms).single()?
            }
            When::Cron { cron, zone, .. } => {
                cron.find_next_occurrence(&after.with_timezone(zone), false).ok()?.with_timezone(&Utc)
            }
        };
        Some(next.fixed_offset())
    }

    /// The fires to send now, given the last fire sent (`None`: never) and the missed
    /// policy: the fire times in (`last`, `now`], of which `skip` keeps one only when it
    /// is the only one (the beat on time), `run-once` the latest, `catch-up` all.
    pub fn due(&self, last: Option<Timestamp>, now: Timestamp) -> Vec<Timestamp> {
        let Some(last) = last else {
            // Never fired: nothing is owed yet; the first fire is the next one.
            return Vec::new();
        };
        let mut fires = Vec::new();
        let mut at = last;
        while let Some(next) = self.next_after(at).filter(|next| *next <= now) {
            fires.push(next);
            if fires.len() > CATCH_UP_LIMIT {
                break;
            }
            at = next;
        }
        let Some(&latest) = fires.last() else { return fires };
        match self.missed {
            Missed::CatchUp => {
                fires.truncate(CATCH_UP_LIMIT);
                fires
            }
            Missed::RunOnce => vec![latest],
            // One fire due is the beat on time; more mean some passed while no beat ran.
            Missed::Skip if fires.len() == 1 => fires,
            Missed::Skip => Vec::new(),
        }
    }

    /// The task id sent for the fire at `at`: the same from every beat.
    pub fn task_id(&self, at: Timestamp) -> String {
        let name = format!("artel-beat:{}:{}", self.name, at.with_timezone(&Utc).timestamp_millis());
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).to_string()
    }

    /// How it fires, as `artel beat --list` shows it.
    pub fn describe(&self) -> String {
        match &self.when {
            When::Every(period) => format!("every {period:?}"),
            When::Cron { pattern, zone, .. } => format!("cron {pattern} ({zone})"),
        }
    }
}

/// A beat's entries.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// In file order.
    pub entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    schedule: Vec<FileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    task: String,
    #[serde(default)]
    args: Vec<toml::Value>,
    #[serde(default)]
    kwargs: toml::Table,
    every: Option<String>,
    cron: Option<String>,
    timezone: Option<String>,
    missed: Option<Missed>,
    jitter: Option<String>,
    queue: Option<String>,
    priority: Option<u8>,
    expires: Option<String>,
}

impl Schedule {
    /// Parses a schedule file's text; errors name the entry and what to fix.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut entries: Vec<Entry> = Vec::new();
        for raw in file.schedule {
            let name = raw.name.clone();
            let entry = Self::entry(raw).map_err(|problem| format!("entry {name:?}: {problem}"))?;
            if entries.iter().any(|e| e.name == entry.name) {
                return Err(format!("entry {name:?} is listed twice: names must be unique"));
            }
            entries.push(entry);
        }
        Ok(Self { entries })
    }

    fn entry(raw: FileEntry) -> Result<Entry, String> {
        if artel_lock::check_key(&raw.name).is_err() {
            return Err("name it with letters, digits, `.`, `_` and `-` (it names the entry's record)".to_owned());
        }
        let when = match (&raw.every, &raw.cron) {
            (Some(every), None) => {
                if raw.timezone.is_some() {
                    return Err("`timezone` applies to `cron` only".to_owned());
                }
                let period = parse_duration(every)?;
                if period.is_zero() {
                    return Err("`every` must be longer than zero".to_owned());
                }
                When::Every(period)
            }
            (None, Some(pattern)) => {
                let cron = Cron::from_str(pattern).map_err(|e| format!("cron {pattern:?}: {e}"))?;
                let zone = match &raw.timezone {
                    None => Tz::UTC,
                    Some(name) => {
                        name.parse::<Tz>().map_err(|_| format!("unknown time zone {name:?} (e.g. Europe/Paris)"))?
                    }
                };
                When::Cron { cron: Box::new(cron), pattern: pattern.clone(), zone }
            }
            _ => return Err("give exactly one of `every` (e.g. \"10s\") or `cron` (e.g. \"0 */5 * * * *\")".to_owned()),
        };
        let json = |value: toml::Value| serde_json::to_value(value).map_err(|e| e.to_string());
        let args = raw.args.into_iter().map(json).collect::<Result<Vec<Value>, _>>()?;
        let kwargs = match json(toml::Value::Table(raw.kwargs))? {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let mut signature = Signature::new(&raw.task).with_args(args);
        for (name, value) in kwargs {
            signature = signature.kwarg(name, value);
        }
        if let Some(queue) = raw.queue {
            signature = signature.queue(queue);
        }
        if let Some(priority) = raw.priority {
            signature = signature.priority(priority);
        }
        if let Some(expires) = raw.expires {
            signature = signature.expires_in(parse_duration(&expires)?);
        }
        let jitter = raw.jitter.as_deref().map(parse_duration).transpose()?.unwrap_or_default();
        Ok(Entry { name: raw.name, signature, when, missed: raw.missed.unwrap_or(Missed::Skip), jitter })
    }
}

/// `500ms`, `10s`, `5m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration (e.g. 10s, 500ms, 5m)"))?;
    let seconds = |s: u64| Duration::from_secs(n.saturating_mul(s));
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(seconds(1)),
        "m" => Ok(seconds(60)),
        "h" => Ok(seconds(3600)),
        "d" => Ok(seconds(86_400)),
        other => Err(format!("unknown duration unit `{other}` in `{text}` (use ms, s, m, h or d)")),
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn at(text: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(text).expect("a time")
    }

    fn entry(toml: &str) -> Entry {
        let schedule = Schedule::parse(&format!("[[schedule]]\nname = \"e\"\ntask = \"echo\"\n{toml}")).expect("valid");
        schedule.entries.into_iter().next().expect("one entry")
    }

    #[test]
    fn intervals_fire_at_multiples_of_their_period_since_the_epoch() {
        let every = entry("every = \"10s\"");
        assert_eq!(every.next_after(at("2026-03-01T12:00:03Z")), Some(at("2026-03-01T12:00:10Z")));
        assert_eq!(every.next_after(at("2026-03-01T12:00:10Z")), Some(at("2026-03-01T12:00:20Z")), "strictly after");
        let hourly = entry("every = \"1h\"");
        assert_eq!(hourly.next_after(at("2026-03-01T12:59:59Z")), Some(at("2026-03-01T13:00:00Z")));
    }

    #[test]
    fn cron_reads_its_pattern_in_its_time_zone_across_a_dst_change() {
        // 02:30 every day in Paris; on 2026-03-29 clocks jump from 02:00 to 03:00.
        let daily = entry("cron = \"30 2 * * *\"\ntimezone = \"Europe/Paris\"");
        assert_eq!(daily.next_after(at("2026-03-27T12:00:00Z")), Some(at("2026-03-28T01:30:00Z")), "UTC+1 before");
        let after_gap = daily.next_after(at("2026-03-28T12:00:00Z")).expect("a fire");
        assert!(after_gap >= at("2026-03-29T00:00:00Z"), "{after_gap}");
        assert_eq!(daily.next_after(at("2026-03-30T00:00:00Z")), Some(at("2026-03-30T00:30:00Z")), "UTC+2 after");
        let every_five_seconds = entry("cron = \"*/5 * * * * *\"");
        assert_eq!(every_five_seconds.next_after(at("2026-03-01T12:00:01Z")), Some(at("2026-03-01T12:00:05Z")));
    }

    #[test]
    fn missed_fires_follow_each_policy() {
        let last = Some(at("2026-03-01T12:00:00Z"));
        let now = at("2026-03-01T12:00:35Z"); // 10, 20 and 30 passed
        let on_time = at("2026-03-01T12:00:10Z");
        for (policy, expected) in [
            ("skip", vec![]),
            ("run-once", vec![at("2026-03-01T12:00:30Z")]),
            ("catch-up", vec![on_time, at("2026-03-01T12:00:20Z"), at("2026-03-01T12:00:30Z")]),
        ] {
            let e = entry(&format!("every = \"10s\"\nmissed = \"{policy}\""));
            assert_eq!(e.due(last, now), expected, "{policy}");
            assert_eq!(e.due(last, at("2026-03-01T12:00:12Z")), vec![on_time], "{policy}: the beat on time");
            assert!(e.due(None, now).is_empty(), "{policy}: never fired, nothing owed");
        }
    }

    #[test]
    fn a_fire_has_the_same_task_id_from_every_beat() {
        let e = entry("every = \"10s\"");
        let fire = at("2026-03-01T12:00:10Z");
        assert_eq!(e.task_id(fire), entry("every = \"10s\"").task_id(fire));
        assert_ne!(e.task_id(fire), e.task_id(at("2026-03-01T12:00:20Z")));
    }

    #[test]
    fn mistakes_name_the_entry_and_the_fix() {
        let both = Schedule::parse("[[schedule]]\nname = \"x\"\ntask = \"t\"\nevery = \"1s\"\ncron = \"* * * * *\"\n");
        assert!(both.expect_err("both").contains("entry \"x\": give exactly one"));
        let zone = Schedule::parse(
            "[[schedule]]\nname = \"x\"\ntask = \"t\"\ncron = \"* * * * *\"\ntimezone = \"Mars/Base\"\n",
        );
        assert!(zone.expect_err("zone").contains("unknown time zone"));
        let twice = "[[schedule]]\nname = \"x\"\ntask = \"t\"\nevery = \"1s\"\n".repeat(2);
        assert!(Schedule::parse(&twice).expect_err("twice").contains("listed twice"));
        assert!(Schedule::parse("[[schedule]]\nname = \"x\"\ntask = \"t\"\nevery = \"0s\"\n").is_err());
    }
}
