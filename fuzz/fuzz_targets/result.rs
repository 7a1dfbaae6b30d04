//! Any bytes stored as a result (by artel, by Python, by anything): reading it back and
//! turning a stored exception into an error never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(result) = serde_json::from_slice::<artel_core::TaskResult>(data) {
        let _ = result.error();
        let _ = result.status.is_ready();
        let _ = serde_json::to_vec(&result);
    }
});
