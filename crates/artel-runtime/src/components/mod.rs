//! The worker components any broker can use (see [`crate::Component`]); those that speak
//! a wire protocol (Celery's remote control and events) live with their wire.

mod board;
mod burst;
mod heartbeat;
mod history;
mod reporter;
mod revocations;

pub use board::BoardControl;
pub use burst::BurstWatcher;
pub(crate) use heartbeat::LeaseHeartbeat;
pub(crate) use history::history;
pub use reporter::StatsReporter;
pub(crate) use revocations::RevocationPoller;
