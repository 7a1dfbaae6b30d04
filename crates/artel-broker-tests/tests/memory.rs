//! The conformance suite against `memory://`.

use std::sync::Arc;

use artel_broker_tests::{Fixture, conformance};
use artel_core::memory::{MemoryBackend, MemoryBroker};

fn memory() -> Fixture {
    Fixture {
        broker: Arc::new(MemoryBroker::new()),
        backend: Arc::new(MemoryBackend::new()),
        prefix: "t-".to_owned(),
        failed: None,
        cleanup: Box::new(()),
    }
}

conformance!(memory());
