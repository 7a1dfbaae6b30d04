//! The conformance suite against `memory://`.

use std::sync::Arc;

use artel_broker_tests::{Capabilities, Fixture, conformance};
use artel_core::memory::{MemoryBackend, MemoryBroker};

fn memory() -> Fixture {
    Fixture {
        broker: Arc::new(MemoryBroker::new()),
        backend: Arc::new(MemoryBackend::new()),
        prefix: "t-".to_owned(),
        failed: None,
        admin: None,
        inspect: None,
        leases: None,
        capabilities: Capabilities::NATIVE,
        cleanup: Box::new(()),
    }
}

conformance!(memory());
