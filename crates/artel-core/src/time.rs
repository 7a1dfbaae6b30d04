//! Timestamps as Celery writes them, and the injected clock.
//!
//! Celery writes `eta`/`expires`/`date_done` with Python's `datetime.isoformat()`:
//! microseconds only when non-zero and an explicit `+HH:MM` offset. We keep the
//! original offset ([`Timestamp`] is a fixed-offset time) so that a message read
//! and written again is byte-for-byte the same value.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDateTime, SubsecRound, Timelike, Utc};

/// A point in time with the UTC offset it was written with.
pub type Timestamp = DateTime<FixedOffset>;

/// Source of "now" for everything that schedules: injected so tests control time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The real wall clock, to the microsecond (the precision Celery's ISO times carry, so a
/// time written and read back is equal).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now().trunc_subsecs(6).fixed_offset()
    }
}

/// Now as unix seconds with a fraction: what Celery's events, `kombu`'s `unacked_index`
/// and `inspect active` use.
pub fn unix_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Now as unix milliseconds, for due times kept in memory (ETAs a consumer holds).
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A clock that moves only when told to, for deterministic tests of ETAs and expiry.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `now` plus `delay`, saturating at the last second Python's `datetime` can hold
/// (9999-12-31T23:59:59Z): a delay from a message or a retry never overflows into a panic.
pub fn after(now: Timestamp, delay: Duration) -> Timestamp {
    let latest = DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default().fixed_offset();
    chrono::TimeDelta::from_std(delay)
        .ok()
        .and_then(|delta| now.checked_add_signed(delta))
        .map_or(latest, |at| at.min(latest))
}

/// Formats a timestamp exactly like Python's `datetime.isoformat()`.
pub fn to_iso(ts: &Timestamp) -> String {
    if ts.nanosecond() / 1000 == 0 {
        ts.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    } else {
        ts.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
    }
}

/// Parses any ISO 8601 time Celery may send; a value without offset is taken as UTC.
pub fn parse_iso(text: &str) -> Result<Timestamp, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).or_else(|err| {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
            .map(|naive| naive.and_utc().fixed_offset())
            .map_err(|_| err)
    })
}

/// Serde adapter for `Option<Timestamp>` in Celery's ISO format (`null` when absent).
pub mod iso_opt {
    use super::{Timestamp, parse_iso, to_iso};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes the timestamp as `isoformat()` text, or `null`.
    pub fn serialize<S: Serializer>(ts: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match ts {
            Some(ts) => s.serialize_str(&to_iso(ts)),
            None => s.serialize_none(),
        }
    }

    /// Reads ISO 8601 text (any offset, fractions optional) or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => {
                parse_iso(&text).map(Some).map_err(|e| D::Error::custom(format!("bad ISO 8601 time {text:?}: {e}")))
            }
            None => Ok(None),
        }
    }
}

/// Serde adapter for `Option<Duration>` as seconds: a whole number stays an integer.
pub mod seconds_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes whole seconds as an integer and anything finer as a float.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) if d.subsec_nanos() == 0 => s.serialize_u64(d.as_secs()),
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    /// Reads a non-negative number of seconds or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            Some(secs) => Duration::try_from_secs_f64(secs)
                .map(Some)
                .map_err(|_| D::Error::custom(format!("{secs} is not a valid number of seconds"))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_matches_python_isoformat() {
        let with_micros = parse_iso("2026-11-21T22:12:25.961230+00:00").expect("parses");
        assert_eq!(to_iso(&with_micros), "2026-11-21T22:12:25.961230+00:00");
        let whole = parse_iso("2030-01-01T12:00:00+02:00").expect("parses");
        assert_eq!(to_iso(&whole), "2030-01-01T12:00:00+02:00");
    }

    #[test]
    fn naive_iso_is_utc() {
        let naive = parse_iso("2030-01-01T12:00:00.5").expect("parses");
        assert_eq!(to_iso(&naive), "2030-01-01T12:00:00.500000+00:00");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_iso("next tuesday").is_err());
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(parse_iso("2030-01-01T00:00:00+00:00").expect("parses"));
        let before = clock.now();
        assert_eq!(clock.now(), before);
        clock.advance(Duration::from_secs(90));
        assert_eq!(to_iso(&clock.now()), "2030-01-01T00:01:30+00:00");
    }

    #[test]
    fn a_delay_past_what_dates_hold_saturates_instead_of_panicking() {
        let now = SystemClock.now();
        assert_eq!(after(now, Duration::from_secs(1)), now + chrono::TimeDelta::seconds(1));
        for huge in [Duration::MAX, Duration::from_secs(u64::MAX / 2), Duration::from_secs(1_000_000 * 365 * 86_400)] {
            assert_eq!(to_iso(&after(now, huge)), "9999-12-31T23:59:59+00:00");
        }
        let message =
            crate::Signature::new("t").countdown(Duration::MAX).expires_in(Duration::MAX).to_message(now, "t");
        assert_eq!(message.headers.eta.map(|eta| to_iso(&eta)).as_deref(), Some("9999-12-31T23:59:59+00:00"));
    }
}
