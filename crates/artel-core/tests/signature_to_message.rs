//! Signature options become the Celery headers and properties a Python client sends.

use std::time::Duration;

use artel_core::{Message, Signature};
use serde_json::json;

#[test]
fn signature_options_become_celery_headers() {
    let now = artel_core::time::parse_iso("2030-01-01T00:00:00+00:00").expect("time");
    let m = Signature::new("app.add")
        .with_args(vec![json!(2), json!(3)])
        .countdown(Duration::from_secs(10))
        .expires_in(Duration::from_secs(60))
        .time_limit(Duration::from_secs(30))
        .soft_time_limit(Duration::from_millis(2500))
        .queue("fast")
        .priority(7)
        .to_message(now, "gen1@host");
    assert_eq!(artel_core::time::to_iso(&m.headers.eta.expect("eta")), "2030-01-01T00:00:10+00:00");
    assert_eq!(artel_core::time::to_iso(&m.headers.expires.expect("expires")), "2030-01-01T00:01:00+00:00");
    assert_eq!(m.properties.expiration.as_deref(), Some("60000"));
    assert_eq!(m.headers.timelimit, (Some(30.0), Some(2.5)));
    assert_eq!((m.queue(), m.properties.priority), ("fast", 7));
    assert_eq!(m.headers.root_id.as_deref(), Some(m.headers.id.as_str()));
    let body = m.decode_body().expect("body");
    assert_eq!(body.args, vec![json!(2), json!(3)]);
    // And it survives the envelope encoding every broker stores.
    assert_eq!(Message::from_envelope(&m.to_envelope()).expect("decodes"), m);
}
