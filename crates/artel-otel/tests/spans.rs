//! Task runs as OpenTelemetry spans, checked with the SDK's in-memory exporter: one
//! trace from the producer's span through each step of a chain, and a span of its own
//! for a message that carries no trace context.

use std::sync::Arc;
use std::time::Duration;

use artel::{App, Registry, Signature, TaskError, WorkerConfig, chain};
use artel_otel::TaskSpans;
use opentelemetry::context::FutureExt;
use opentelemetry::trace::{Span, SpanId, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

#[artel::task]
async fn first(x: i64) -> Result<i64, TaskError> {
    Ok(x + 1)
}

#[artel::task]
async fn second(x: i64) -> Result<i64, TaskError> {
    Ok(x * 2)
}

fn traced_app() -> (App, SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = artel_otel::provider().with_simple_exporter(exporter.clone()).build();
    let config = WorkerConfig { events: Some(Arc::new(TaskSpans::new(&provider))), ..WorkerConfig::default() };
    let app = App::local_with(Registry::new().with(first).with(second), config).expect("app");
    (app, provider, exporter)
}

fn span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv: &KeyValue| kv.value.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_producers_span_through_each_step_of_a_chain() {
    artel_otel::continue_current_spans();
    let (app, provider, exporter) = traced_app();
    let producer = provider.tracer("producer").start("handle request");
    let producer_ids = producer.span_context().clone();
    let context = Context::current_with_span(producer);
    let workflow = chain([first::s(1).into_signature().expect("args"), Signature::new("second")]);
    let id = app.send(workflow).with_context(context.clone()).await.expect("sent");
    let result = app.backend().results().wait(&id, Duration::from_secs(10)).await.expect("ran");
    assert_eq!(result.result, serde_json::json!(4));
    app.shutdown().await;
    context.span().end();
    provider.force_flush().expect("flush");

    let spans = exporter.get_finished_spans().expect("spans");
    let (a, b) = (span(&spans, "run first"), span(&spans, "run second"));
    let trace = producer_ids.trace_id();
    assert_eq!((a.span_context.trace_id(), b.span_context.trace_id()), (trace, trace), "one trace");
    assert_eq!(a.parent_span_id, producer_ids.span_id(), "the first step's parent is the producer's span");
    assert_eq!(b.parent_span_id, a.span_context.span_id(), "the next step's parent is the first run");
    assert_eq!(attribute(a, "artel.task.outcome"), Some(Value::from("SUCCESS")));
    assert_eq!(attribute(b, "artel.task.id"), Some(Value::from(id)), "the chain's last step has its id");
    assert!(a.start_time <= a.end_time && a.end_time <= b.start_time, "runs in order: {a:?} {b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_without_trace_context_still_gets_a_span_of_its_own() {
    let (app, provider, exporter) = traced_app();
    // What a Python producer without OpenTelemetry sends: no traceparent header.
    let message = first::s(41).into_signature().expect("args").to_message(chrono::Utc::now().fixed_offset(), "py@host");
    assert!(message.headers.traceparent.is_none());
    app.backend().broker().publish("celery", std::slice::from_ref(&message)).await.expect("published");
    app.backend().results().wait(&message.headers.id, Duration::from_secs(10)).await.expect("ran");
    app.shutdown().await;
    provider.force_flush().expect("flush");

    let spans = exporter.get_finished_spans().expect("spans");
    let run = span(&spans, "run first");
    assert_eq!(run.parent_span_id, SpanId::INVALID, "a root span");
    assert_eq!(attribute(run, "messaging.destination.name"), Some(Value::from("celery")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_has_an_error_status() {
    let (app, provider, exporter) = traced_app();
    let sent =
        app.send(Signature::new("first").with_args(vec![serde_json::json!("not a number")])).await.expect("sent");
    let _ = app.backend().results().wait(&sent, Duration::from_secs(10)).await;
    app.shutdown().await;
    provider.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let run = span(&spans, "run first");
    assert!(matches!(run.status, opentelemetry::trace::Status::Error { .. }), "{:?}", run.status);
}
