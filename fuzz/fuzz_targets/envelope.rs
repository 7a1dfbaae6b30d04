//! Any bytes a queue may hold, through everything a worker does with a message before it
//! runs the task: the envelope (kombu JSON, Python's NaN/Infinity, salvage of the id),
//! the headers (eta, expires, timelimit, retries...), the protocol 2 body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = artel_core::Message::from_envelope_or_salvage(data) {
        let _ = message.decode_body();
        let _ = message.queue();
        let headers = &message.headers;
        let _ = headers.eta.as_ref().map(artel_core::time::to_iso);
        let _ = headers.expires.as_ref().map(artel_core::time::to_iso);
        let _ = message.to_envelope();
    }
});
