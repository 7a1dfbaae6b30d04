//! artel beat: periodic tasks for the queue.
//!
//! A [`Schedule`] (from TOML or code) lists entries that fire on intervals or cron
//! patterns in a time zone; [`Beat`] sends each fire as a task, with a task id derived
//! from (entry, fire time). Any number of beats may run: one leads through a lock on the
//! broker and keeps each entry's last fire there as a fenced value, so fires missed while
//! no beat led follow the entry's [`Missed`] policy and none is sent twice.

mod beat;
mod schedule;

pub use beat::{Beat, BeatError, DEFAULT_LEASE, LeaderNote};
pub use schedule::{CATCH_UP_LIMIT, Entry, Missed, Schedule, When, parse_duration};
