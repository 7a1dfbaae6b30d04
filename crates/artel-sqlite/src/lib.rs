//! `sqlite://`: artel's embedded broker and result backend.
//!
//! Producers and workers in separate processes share one SQLite file (WAL mode); no
//! server runs. Guarantees:
//!
//! * **At least once.** A claim leases a message (`visible_at` pushed to now + lease);
//!   the consumer's heartbeat keeps extending its leases; ack deletes the row. When a
//!   worker dies its heartbeat stops, the lease lapses and the message is claimed again.
//!   Acks, releases and dead-lettering are guarded by the holder's lease token, so a
//!   worker that lost its lease cannot settle a message someone else now holds.
//! * **Durable delays.** A message with an ETA is stored with `visible_at` = ETA; no
//!   worker holds it in memory.
//! * **Priorities** 0-9, higher first within a queue; queues are served in the order given.
//! * **Results** are written with a guard: a final state is never replaced.
//!
//! Limitations: SQLite has one writer at a time, so throughput comes from batching (each
//! process group-commits its writes, consumers claim in batches). Another process's
//! publishes and stored results wake waiters through datagram sockets beside the file
//! (`wake`); polling (`poll_interval`, `result_poll`) covers what a wake-up misses.

mod admin;
mod backend;
mod broker;
mod cache;
mod db;
mod failed;
mod history;
mod lease;
mod locks;
mod queries;
mod shared;
mod wake;

pub use broker::{SqliteBroker, remove_database};
pub use cache::SqliteCache;
pub use locks::SqliteLocks;
pub use shared::SqliteConfig;
