//! artel's service manager: named programs in N copies each, kept running.
//!
//! * [`Supervisor`] keeps every copy of every [`Program`] running: restarts with
//!   exponential backoff, marks a copy failed after a crash loop, stops with SIGTERM to
//!   the copy's process group then SIGKILL after a grace period, converges on a new
//!   program list one copy at a time.
//! * [`supervise`] runs one as a process does: until SIGTERM/SIGINT, reloading on
//!   SIGHUP, answering [`status`] on a Unix socket. `artel supervise --config FILE` is
//!   this over a TOML [`Config`].
//! * [`ServiceManager`] does the same for Rust [`Service`]s (cotyledon's API): the
//!   program runs itself again once per copy.

mod program;
mod run;
mod service;
mod supervisor;

pub use program::{Config, ConfigError, Program};
pub use run::{OnHangup, status, supervise};
pub use service::{SERVICE_ENV, Service, ServiceManager};
pub use supervisor::{Board, CopyStatus, Settings, State, Supervisor};
