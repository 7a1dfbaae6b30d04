//! The conformance suite against `memory://`.

use std::sync::Arc;

use artel_broker_tests::{Capabilities, Fixture, SlowPolling, conformance};
use artel_core::memory::{MemoryBackend, MemoryBroker};

fn memory() -> Fixture {
    let (broker, backend) = (Arc::new(MemoryBroker::new()), Arc::new(MemoryBackend::new()));
    // Nothing in memory polls: the same broker serves as the slowly polling one.
    let slow_polling = {
        let (broker, backend) = (broker.clone(), backend.clone());
        SlowPolling {
            open: Box::new(move || {
                let (broker, backend) = (broker.clone(), backend.clone());
                Box::pin(async move { (broker as _, backend as _) })
            }),
        }
    };
    Fixture {
        broker,
        backend,
        slow_polling,
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
