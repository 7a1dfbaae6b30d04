//! `redis://`: artel's native Redis broker and result backend.
//!
//! Stronger than Celery's Redis transport: a claimed message is *leased*, not popped.
//!
//! * **At least once.** Claiming moves ids from the pending set into a lease set with a
//!   deadline and records the holder's token; the consumer's heartbeat extends its
//!   leases; ack deletes. When a worker dies its leases lapse and the next claim moves
//!   those messages back to pending (no separate recoverer). Ack, release and
//!   dead-lettering check the holder token, so a worker that lost its lease cannot
//!   settle a message another worker now holds.
//! * **Durable delays**: a message with a future ETA waits in a scheduled set on the
//!   server, not in worker memory.
//! * **Priorities** 0-9, higher first, FIFO within a priority (one sorted set).
//! * **Atomic transitions**: each is one Lua script in `lua/` (KEYS/ARGV/Returns header),
//!   run by SHA. All keys of a queue share the hash tag `{queue}` (Redis Cluster slots).
//! * **Waiting is pushed**: an idle consumer blocks (BLPOP on the queue's signal list, on
//!   a dedicated connection); a result waiter subscribes to the result's channel.
//! * **One server, Sentinel or a Redis Cluster** (`redis+cluster://`, see [`cluster`]):
//!   every command goes through one connection type ([`Conn`]) that routes by slot on a
//!   cluster. There a result and its task's queue live on different slots, so a finished
//!   task is stored, then acked (two scripts), and a consumer of queues on several
//!   masters blocks on each queue's signal list from a listener of its own.

mod admin;
mod backend;
mod board;
mod broker;
mod cache;
pub mod cluster;
pub mod completer;
mod conn;
mod failed;
pub mod feed;
mod history;
mod keys;
mod lease;
mod locks;
mod scripts;
pub mod sentinel;
mod shared;
mod tls;
pub mod toolkit;

pub use broker::RedisBroker;
pub use cache::RedisCache;
pub use conn::Conn;
pub use history::RedisHistory;
pub use locks::RedisLocks;
pub use shared::RedisConfig;
