//! Every captured Celery 5.7 message and result decodes, and encodes back to the same JSON.

use std::path::{Path, PathBuf};

use artel_core::{DecodeError, Message, State, TaskResult};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/celery")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("fixture is JSON")
}

fn samples(suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixtures dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// The captured envelopes that are protocol 2 with a plain JSON body.
fn protocol2_envelopes() -> Vec<String> {
    samples(".envelope.json")
        .into_iter()
        .filter(|n| !n.starts_with("task-protocol1") && !n.starts_with("task-gzip"))
        .filter(|n| json(&read(n)).pointer("/headers/task").is_some())
        .collect()
}

#[test]
fn envelopes_round_trip_to_identical_json() {
    let names = protocol2_envelopes();
    assert!(names.len() >= 20, "expected the task samples, found {names:?}");
    for name in names {
        let raw = read(&name);
        let message = Message::from_envelope(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut original = json(&raw);
        // `_list_key` is the capture script's note of where the envelope was found, not wire data.
        original.as_object_mut().map(|o| o.remove("_list_key"));
        assert_eq!(json(&message.to_envelope()), original, "{name} changed on re-encoding");
    }
}

#[test]
fn bodies_decode_to_args_kwargs_embed_and_back() {
    for name in protocol2_envelopes() {
        let message = Message::from_envelope(&read(&name)).expect("decodes");
        let body = message.decode_body().unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = serde_json::to_value(&body).expect("serializes");
        assert_eq!(again, json(&message.body), "{name} body changed on re-encoding");
    }
}

#[test]
fn chain_embed_holds_remaining_steps_next_last() {
    let message = Message::from_envelope(&read("chain3.envelope.json")).expect("decodes");
    let body = message.decode_body().expect("body");
    assert_eq!(body.args, vec![Value::from(1), Value::from(2)]);
    let chain = body.embed.chain.expect("chain steps");
    let names: Vec<&str> = chain.iter().map(|s| s.task.as_str()).collect();
    assert_eq!(names, ["app.add", "app.mul"], "next step is last");
    assert!(chain.iter().all(|s| s.options.task_id.is_some()), "steps carry pre-assigned ids");
}

#[test]
fn headers_carry_celery_options() {
    let m = Message::from_envelope(&read("task-options.envelope.json")).expect("decodes");
    assert_eq!(m.headers.timelimit, (Some(10.0), Some(5.0)), "hard first, soft second");
    assert!(m.headers.ignore_result);
    assert_eq!(m.headers.shadow.as_deref(), Some("add-shadowed"));
    assert_eq!(m.headers.extra.get("x_custom"), Some(&Value::from("v")));
    let left: Vec<&String> = m.headers.extra.keys().collect();
    assert_eq!(left, ["x_custom"], "Celery's own headers are typed fields; only the user's is left over");
    assert!(m.properties.extra.is_empty(), "body_encoding says how to read the envelope and is not kept");

    let m = Message::from_envelope(&read("task-eta-tz.envelope.json")).expect("decodes");
    assert_eq!(m.headers.eta.expect("eta").offset().local_minus_utc(), 2 * 3600);

    let m = Message::from_envelope(&read("task-priority9.envelope.json")).expect("decodes");
    assert_eq!(m.properties.priority, 9);
}

#[test]
fn protocol1_and_compressed_messages_are_refused_clearly() {
    let err = Message::from_envelope(&read("task-protocol1.envelope.json")).expect_err("protocol 1");
    assert!(err.to_string().contains("protocol 1 is not supported"), "{err}");

    let gz = Message::from_envelope(&read("task-gzip.envelope.json")).expect("envelope is fine");
    let err = gz.decode_body().expect_err("gzip body");
    assert!(matches!(err, DecodeError::Compressed(ref c) if c == "application/x-gzip"), "{err}");
}

#[test]
fn garbage_is_a_decode_error_not_a_panic() {
    for bad in [&b"not json"[..], b"{}", b"[1,2,3]", br#"{"body": 5}"#] {
        assert!(Message::from_envelope(bad).is_err());
    }
}

#[test]
fn results_round_trip_and_expose_errors() {
    let names = samples(".json")
        .into_iter()
        .filter(|n| n.starts_with("result-") && !n.contains("group-saved"))
        .collect::<Vec<_>>();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let raw = json(&read(&name));
        let result: TaskResult = serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(serde_json::to_value(&result).expect("serializes"), raw, "{name}");
    }
    let failure: TaskResult = serde_json::from_slice(&read("result-failure.json")).expect("decodes");
    assert_eq!(failure.status, State::Failure);
    let error = failure.error().expect("a failure holds an error");
    assert_eq!(error.to_string(), "ValueError: boom");
    assert!(error.traceback().is_some_and(|tb| tb.contains("raise ValueError")));
}

/// A Python producer instrumented with OpenTelemetry (opentelemetry-instrumentation-celery)
/// injects `traceparent`/`tracestate` into the message headers: the run continues that
/// trace with the producer's span as parent; without them it is a trace of its own.
#[test]
fn a_python_producers_trace_context_in_the_headers_is_continued() {
    let mut envelope = json(&read("task-countdown.envelope.json"));
    let headers = envelope.get_mut("headers").and_then(Value::as_object_mut).expect("headers");
    headers.insert("traceparent".into(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
    headers.insert("tracestate".into(), "congo=t61rcWkgMzE".into());
    let bytes = serde_json::to_vec(&envelope).expect("json");
    let message = Message::from_envelope(&bytes).expect("decodes");
    let parent = artel_core::TraceContext::of(&message.headers).expect("the producer's context");
    let run = artel_core::TraceContext::of_run(&message.headers);
    assert_eq!(run.trace_id, 0x0af7651916cd43dd8448eb211c80319c, "the producer's trace");
    assert_eq!(parent.span_id, 0xb7ad6b7169203331, "the producer's span is the parent");
    assert_ne!(run.span_id, parent.span_id, "the run has a span of its own");
    assert_eq!(run.state.as_deref(), Some("congo=t61rcWkgMzE"), "tracestate passes along");
    assert_eq!(json(&message.to_envelope()), envelope, "the headers round-trip untouched");

    let plain = Message::from_envelope(&read("task-countdown.envelope.json")).expect("decodes");
    assert!(artel_core::TraceContext::of(&plain.headers).is_none(), "Celery without OpenTelemetry sends none");
}
