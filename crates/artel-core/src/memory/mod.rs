//! `memory://`: an in-process broker and result backend.
//!
//! The reference implementation of the broker traits, used by `App::local()` and tests.
//! It honours priorities (higher first), holds delayed messages until due, and puts
//! undecided deliveries back; it keeps nothing across restarts.

mod backend;
mod broker;

pub use backend::MemoryBackend;
pub use broker::MemoryBroker;
