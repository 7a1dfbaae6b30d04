//! Rate limits every worker shares ([`RateLimits`]): `rate_limit_global = "50/s"` holds
//! across all workers of a broker, where Celery's `rate_limit` holds per worker.
//!
//! The algorithm is GCRA (a token bucket of one token, refilled every `interval`), kept
//! per key as two times: `ready`, when the next run may start, and `booked`, where the
//! reservations end. A run admitted now moves `ready` one interval on. A run refused may
//! book the first free slot at or after `ready`: its message is then published again
//! with that ETA, so a backlog spreads out over the slots instead of every refused run
//! coming back at once to fight for the next one. Booking never admits anything: a
//! booked run is checked again when it comes back, so runs that arrive late and bunched
//! still start at most one per interval.
//!
//! Invariants: no two runs of a key are admitted less than `interval` apart (by the
//! clock of the store that decides); a refusal changes nothing but `booked`.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;

use crate::broker::BrokerResult;

/// A key's state: unix microseconds when its next run may start, and the end of its
/// booked slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateState {
    /// When the next run may start.
    pub ready: i64,
    /// Where the booked slots end (never before `ready` once any was booked).
    pub booked: i64,
}

/// What a store answers a run asking to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Start now.
    Now,
    /// Not now: ask again after this long (a booked slot, when booking was asked).
    After(Duration),
}

/// Where shared rate limits are kept: one atomic step per asking run.
#[async_trait]
pub trait RateLimits: Send + Sync + fmt::Debug {
    /// Asks to start one run under `key`, whose runs start at most once per `interval`;
    /// refused, `book` books the next free slot (see the module docs).
    async fn admit(&self, key: &str, interval: Duration, book: bool) -> BrokerResult<Admission>;
}

/// The step every store takes atomically: from `state` (`None`: a new key) at `now`
/// (unix µs), the key's next state and the answer. The Redis script repeats it in Lua.
pub fn admit(state: Option<RateState>, now: i64, interval: Duration, book: bool) -> (RateState, Admission) {
    let step = i64::try_from(interval.as_micros()).unwrap_or(i64::MAX).max(1);
    let state = state.unwrap_or_default();
    if state.ready <= now {
        let ready = now.saturating_add(step);
        return (RateState { ready, booked: state.booked.max(ready) }, Admission::Now);
    }
    let wait = |at: i64| Admission::After(Duration::from_micros(u64::try_from(at - now).unwrap_or(0)));
    if !book {
        return (state, wait(state.ready));
    }
    let slot = state.booked.max(state.ready);
    (RateState { ready: state.ready, booked: slot.saturating_add(step) }, wait(slot))
}

/// Reads Celery's rate format, `N/s`, `N/m` or `N/h` (N > 0): N runs per period.
pub fn parse(rate: &str) -> Result<(NonZeroU32, Duration), String> {
    let bad = || format!("rate limit {rate:?} is not N/s, N/m or N/h (N > 0)");
    let (count, unit) = rate.trim().split_once('/').ok_or_else(bad)?;
    let count: NonZeroU32 = count.trim().parse().map_err(|_| bad())?;
    let period = match unit.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    Ok((count, period))
}

/// Reads Celery's rate format (see [`parse`]) as the interval between two runs.
pub fn interval(rate: &str) -> Result<Duration, String> {
    let (count, period) = parse(rate)?;
    Ok(period / count.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1000;

    fn after(ms: u64) -> Admission {
        Admission::After(Duration::from_millis(ms))
    }

    #[test]
    fn runs_are_admitted_one_interval_apart() {
        let every = Duration::from_millis(20);
        let (state, first) = admit(None, 1000 * MS, every, false);
        assert_eq!(first, Admission::Now);
        let (same, refused) = admit(Some(state), 1005 * MS, every, false);
        assert_eq!(refused, after(15), "15 ms left of the interval");
        assert_eq!(same, state, "a refusal without booking changes nothing");
        let (_, next) = admit(Some(state), 1020 * MS, every, false);
        assert_eq!(next, Admission::Now);
    }

    #[test]
    fn refused_runs_book_consecutive_slots_which_are_checked_again() {
        let every = Duration::from_millis(20);
        let (mut state, _) = admit(None, 0, every, true);
        let mut waits = Vec::new();
        for _ in 0..3 {
            let (next, answer) = admit(Some(state), 0, every, true);
            state = next;
            waits.push(answer);
        }
        assert_eq!(waits, [after(20), after(40), after(60)], "slots follow each other");
        // The first booked run comes back on time and starts; a second one arriving in
        // the same instant (late, bunched) does not.
        let (state, back) = admit(Some(state), 20 * MS, every, true);
        assert_eq!(back, Admission::Now);
        let (_, bunched) = admit(Some(state), 20 * MS, every, true);
        assert_eq!(bunched, after(60), "booked after the others, not let through");
    }

    #[test]
    fn an_idle_key_forgets_old_bookings() {
        let every = Duration::from_millis(20);
        let state = RateState { ready: 5 * MS, booked: 60 * MS };
        let (state, now) = admit(Some(state), 1000 * MS, every, true);
        assert_eq!(now, Admission::Now);
        let (_, next) = admit(Some(state), 1000 * MS, every, true);
        assert_eq!(next, after(20), "the next slot, not one after long-past bookings");
    }

    #[test]
    fn rates_read_as_intervals() {
        assert_eq!(interval("50/s"), Ok(Duration::from_millis(20)));
        assert_eq!(interval(" 10 / m "), Ok(Duration::from_secs(6)));
        assert_eq!(interval("2/h"), Ok(Duration::from_secs(1800)));
        for bad in ["0/s", "-1/s", "5", "5/d", "x/s", ""] {
            assert!(interval(bad).is_err(), "{bad}");
        }
    }
}
