//! artel beat: periodic tasks for the queue.
//!
//! A [`Schedule`] (from TOML or code) lists entries that fire on intervals or cron
//! patterns in a time zone; [`Beat`] sends each fire as a task, with a task id derived
//! from (entry, fire time). Any number of beats may run: one leads through a lock on the
//! broker and keeps each entry's last fire there as a fenced value, so fires missed while
//! no beat led follow the entry's [`Missed`] policy and none is sent twice.
//!
//! ```
//! use artel_beat::{Beat, Schedule};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let schedule = Schedule::parse(r#"
//!     [[schedule]]
//!     name = "tick"
//!     task = "echo"
//!     args = ["tick"]
//!     every = "10s"
//!
//!     [[schedule]]
//!     name = "report"
//!     task = "app.report"
//!     cron = "30 2 * * *"
//!     timezone = "Europe/Paris"
//!     missed = "run-once"
//! "#)?;
//! // On a real broker (`artel::connect(url)`), beats sharing it elect one leader.
//! let beat = Beat::new(artel_core::memory::backend()).schedule(schedule);
//! let upcoming = beat.upcoming();
//! assert_eq!(upcoming.len(), 2);
//! assert!(upcoming.iter().all(|(_, next)| next.is_some()), "both have a next fire time");
//! // `beat.run(...)` sends each fire when due; `artel beat --schedule FILE` does it all.
//! # Ok(())
//! # }
//! ```

mod beat;
mod schedule;

pub use beat::{Beat, BeatError, DEFAULT_LEASE, LeaderNote};
pub use schedule::{CATCH_UP_LIMIT, Entry, Missed, Schedule, When, parse_duration};
