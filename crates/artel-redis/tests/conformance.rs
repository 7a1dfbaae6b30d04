//! The conformance suite against a real Redis, each test under its own key prefix.
//!
//! `ARTEL_REDIS_URL` picks the server (default `redis://127.0.0.1:6379/0`). Without a
//! server the tests are skipped with a message, unless `ARTEL_REQUIRE_SERVICES=1`
//! (set by `scripts/test`), which makes a missing server a failure.

mod support;

use artel_broker_tests::conformance;

fn url() -> String {
    std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

conformance!(match support::fixture(&url()).await {
    Some(fixture) => fixture,
    None => return,
});
