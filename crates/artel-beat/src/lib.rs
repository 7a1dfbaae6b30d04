//! artel beat: periodic tasks for the queue.
//!
//! A [`Schedule`] (from TOML or code) lists entries that fire on intervals or cron
//! patterns in a time zone; [`Beat`] sends each fire as a task, with a task id derived
//! from (entry, fire time), and keeps the last fire of each entry in a state file so
//! fires missed while no beat ran follow the entry's [`Missed`] policy.

mod beat;
mod schedule;

pub use beat::{Beat, BeatError};
pub use schedule::{CATCH_UP_LIMIT, Entry, Missed, Schedule, When, parse_duration};
