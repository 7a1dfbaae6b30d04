//! artel's PostgreSQL broker and result backend (`postgres://user:pass@host:5432/db?schema=artel`).
//!
//! The engine is the leased consumer of artel-sqlite on PostgreSQL's terms:
//!
//! * **Claims never wait on each other.** A claim leases a batch with
//!   `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) RETURNING`: rows
//!   another worker is claiming are skipped, not waited for.
//! * **Leases, not acks, keep a message.** A claim pushes `visible_at` to the lease's end
//!   and records the holder's token; heartbeats extend it; a dead worker's messages become
//!   claimable when their leases lapse. Every write by a holder is guarded by its token.
//! * **Wake-ups without polling.** A publish batch carries one `NOTIFY` in its statement,
//!   or, when one went out in the last 2 ms, shares the next; a completion batch carries
//!   one naming its tasks. Each process keeps one `LISTEN` connection and wakes its idle
//!   consumers, result waiters and watches. Polling (`poll_interval`) only backs up a lost
//!   listener.
//! * **Batched completions.** Finished tasks of every consumer in a process are stored
//!   and acknowledged together, one statement per batch (see `completer`); where the
//!   server's autovacuum is off, the completer vacuums the hot tables itself.
//! * **Transactional enqueue.** [`PostgresBroker::publish_in`] (and [`InTransaction`], a
//!   broker on the caller's transaction for whole sends) writes messages inside the
//!   caller's transaction: workers see them at commit, and a rollback leaves nothing.
//! * **Its own schema.** Migrations run on first use, once per schema (an advisory lock
//!   keeps concurrent first uses apart); tests use a schema each and drop it.
//!
//! Every SQL statement is a file under `queries/`, every migration one under `migrations/`.

mod admin;
mod backend;
mod board;
mod broker;
mod cache;
mod completer;
mod failed;
mod feed;
mod history;
mod lease;
mod locks;
mod shared;
mod transaction;

pub use broker::PostgresBroker;
pub use cache::PostgresCache;
pub use locks::PostgresLocks;
pub use shared::PostgresConfig;
/// The driver, for the transactions [`InTransaction`] publishes in.
pub use sqlx;
pub use transaction::InTransaction;
