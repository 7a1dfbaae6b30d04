//! Any AMQP content header a RabbitMQ delivery may carry (basic properties with Celery's
//! headers as a field table), then the body: decoded into a task message as the amqp://
//! consumer does, and on through everything the worker reads, never panics.
#![no_main]

use artel_celery::amqp::{Arrival, to_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((body, properties)) = lapin::protocol::basic::parse_properties(data) else { return };
    let arrival = Arrival { exchange: "", routing_key: "celery", redelivered: true, delivery_tag: 1 };
    let message = to_message(&properties, arrival, body.to_vec());
    let _ = message.decode_body();
    let _ = message.headers.eta.as_ref().map(artel_core::time::to_iso);
    let _ = message.headers.expires.as_ref().map(artel_core::time::to_iso);
    let _ = message.to_envelope();
});
