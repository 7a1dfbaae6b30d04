//! `celery+redis://`: artel on Celery's own Redis layout, so Python Celery producers,
//! Python Celery workers and Flower share queues and results with artel.
//!
//! * **Queues** are kombu's lists (`Q`, `Q\x06\x163`, `Q\x06\x166`, `Q\x06\x169` for the
//!   priority steps; like kombu, priority 0 is served first), messages kombu's JSON
//!   envelope with a base64 body, held messages kombu's `unacked` hash and
//!   `unacked_index` with its visibility timeout and restore mutex — so Python workers
//!   restore what a dead artel worker held and the other way round. Taking a message and
//!   recording it as held is one script (kombu's BRPOP + MULTI has a gap), and a live
//!   consumer keeps its held messages' times fresh so long tasks are not restored under it.
//! * **ETA/countdown**: as in Celery, the message is delivered at once and the consumer
//!   holds it (still in `unacked`) until due.
//! * **Results** in Celery's Redis result backend format: `celery-task-meta-<id>`
//!   written and announced on its channel, never replacing a final state; chords counted
//!   in Celery 5.7's `celery-taskset-meta-<group>.j/.s/.d/.c` keys.
//! * Messages artel rejects go to `_artel.dead` with the reason (kombu has no dead letters).
//!
//! `prefix` is kombu's `global_keyprefix`.

mod admin;
pub mod amqp;
mod backend;
mod broker;
mod control;
mod events;
mod keys;
mod lease;
mod monitor;
mod scripts;
mod sent;
mod shared;
mod wire;
mod wire_redis;

pub use broker::CeleryRedis;
pub use control::RemoteControl;
pub use events::{EventLoop, EventPublisher, EventsOn};
pub use monitor::EventMonitor;
pub use sent::SentEvents;
pub use shared::CeleryRedisConfig;
pub use wire::{Mailbox, Wire};
pub use wire_redis::unwrap_envelope;

/// kombu's JSON envelope around a raw JSON `body` (events and control messages, which
/// are not task messages).
pub(crate) fn envelope(
    body: &[u8],
    headers: serde_json::Value,
    exchange: &str,
    routing_key: &str,
    mode: u8,
) -> Vec<u8> {
    use base64::Engine;
    let envelope = serde_json::json!({
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            "delivery_mode": mode,
            "delivery_info": {"exchange": exchange, "routing_key": routing_key},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": uuid::Uuid::new_v4().to_string(),
        },
    });
    serde_json::to_vec(&envelope).unwrap_or_default()
}
