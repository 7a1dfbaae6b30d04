//! Any bytes on the remote-control path (`celery inspect`/`control`, Flower): a kombu
//! envelope from Redis's pidbox channel or a raw body from RabbitMQ's, read as a request
//! and addressed, never panics.
#![no_main]

use artel_celery::unwrap_envelope;
use artel_core::worker::remote::ControlRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for body in [Some(data.to_vec()), unwrap_envelope(data)].into_iter().flatten() {
        if let Ok(request) = ControlRequest::decode(&body) {
            let _ = request.is_for("celery@fuzz");
            let _ = request.task_ids();
            let _ = request.method();
        }
    }
});
