//! The conformance suite against `memory://`.

use artel_broker_tests::{Capabilities, Fixture, SlowPolling, conformance};

fn memory() -> Fixture {
    let backend = artel_core::memory::backend();
    // Nothing in memory polls: the same broker serves as the slowly polling one.
    let slow_polling = {
        let backend = backend.clone();
        SlowPolling { open: Box::new(move || Box::pin(std::future::ready(backend.clone()))) }
    };
    Fixture {
        backend,
        slow_polling,
        kept: 0,
        prefix: "t-".to_owned(),
        leases: None,
        // memory:// serves a queue in publish order.
        capabilities: Capabilities { fair_groups: false, ..Capabilities::NATIVE },
        cleanup: Box::new(()),
    }
}

conformance!(memory());
