//! OpenTelemetry for artel: each task run becomes a span in its producer's trace, and
//! spans leave over OTLP as the standard `OTEL_*` variables say.
//!
//! - [`TaskSpans`] is an [`EventSink`]: a worker given it turns each run's events into one
//!   span (name `run <task>`, kind consumer; task name, id, queue, retries and outcome as
//!   attributes; an error status with the error's text), built when the outcome is known.
//! - [`continue_current_spans`] makes sends outside a task run continue the program's
//!   current OpenTelemetry span, so the first step's parent is the producer's span.
//! - [`from_env`] builds the OTLP (HTTP/protobuf) exporter and a tracer provider from
//!   the environment, or nothing when tracing export is not asked for.
//! - [`RunIds`] is the id generator a provider for task spans needs ([`provider`]
//!   starts a builder with it): it gives a run's span the ids the worker derived.
//!
//! Invariants: a run's span has the ids the worker derives for the run
//! ([`artel_core::TraceContext::of_run`]), so whatever the run publishes (a chain's next
//! step, a chord's body, callbacks) names it as parent without anything passed around;
//! its parent is the span named by the message's `traceparent`; a message without one
//! (Python Celery without instrumentation) still gets a span, as a trace of its own.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use artel_core::{EventSink, TaskEvent, TraceContext};
use opentelemetry::trace::{
    Span, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
    TracerProvider,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider, TracerProviderBuilder};

/// The instrumentation scope of artel's spans.
pub const SCOPE: &str = "artel";

/// Runs received but not yet ended at most; beyond, the oldest are forgotten (their
/// outcome events were lost: the worker stopped, the message was handed back).
const OPEN_LIMIT: usize = 100_000;

thread_local! {
    /// The ids the next span built on this thread must have (set around one build).
    static NEXT_IDS: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// Ids for spans: a run's derived ids while [`TaskSpans`] builds its span, random ones
/// for every other span of the program.
#[derive(Debug, Default)]
pub struct RunIds {
    random: RandomIdGenerator,
}

impl IdGenerator for RunIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_IDS.with(Cell::get).map_or_else(|| self.random.new_trace_id(), |(trace, _)| trace)
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_IDS.with(Cell::get).map_or_else(|| self.random.new_span_id(), |(_, span)| span)
    }
}

/// A tracer provider builder with [`RunIds`]: add exporters and build.
pub fn provider() -> TracerProviderBuilder {
    SdkTracerProvider::builder().with_id_generator(RunIds::default())
}

/// Warned once: a provider without [`RunIds`] breaks the links between steps.
static WARNED: AtomicBool = AtomicBool::new(false);

/// Turns a worker's task events into spans.
#[derive(Debug)]
pub struct TaskSpans {
    tracer: SdkTracer,
    open: Mutex<HashMap<String, Open>>,
}

/// A run between its receipt and its outcome.
#[derive(Debug)]
struct Open {
    name: String,
    queue: String,
    retries: u32,
    trace: TraceContext,
    parent_span_id: Option<u64>,
    received: SystemTime,
    started: Option<SystemTime>,
}

impl TaskSpans {
    /// Spans made with `provider`'s tracer for artel; build `provider` from [`provider`]
    /// (it must generate ids with [`RunIds`]).
    pub fn new(provider: &SdkTracerProvider) -> Self {
        Self { tracer: provider.tracer(SCOPE), open: Mutex::default() }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, Open>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Builds and ends the span of run `id`, if it was received here.
    fn end(&self, id: &str, outcome: &str, error: Option<String>) {
        let Some(run) = self.open().remove(id) else { return };
        let trace_id = TraceId::from(run.trace.trace_id);
        let flags = TraceFlags::new(run.trace.flags);
        let parent = match run.parent_span_id {
            Some(parent) => {
                let state = run.trace.state.as_deref().and_then(|s| s.parse::<TraceState>().ok()).unwrap_or_default();
                let remote = SpanContext::new(trace_id, SpanId::from(parent), flags, true, state);
                Context::new().with_remote_span_context(remote)
            }
            None => Context::new(),
        };
        let builder = self
            .tracer
            .span_builder(format!("run {}", run.name))
            .with_kind(SpanKind::Consumer)
            .with_start_time(run.started.unwrap_or(run.received))
            .with_attributes([
                KeyValue::new("artel.task.name", run.name),
                KeyValue::new("artel.task.id", id.to_owned()),
                KeyValue::new("artel.task.retries", i64::from(run.retries)),
                KeyValue::new("artel.task.outcome", outcome.to_owned()),
                KeyValue::new("messaging.system", "artel"),
                KeyValue::new("messaging.destination.name", run.queue),
                KeyValue::new("messaging.message.id", id.to_owned()),
            ]);
        let span_id = SpanId::from(run.trace.span_id);
        NEXT_IDS.with(|next| next.set(Some((trace_id, span_id))));
        let mut span = self.tracer.build_with_context(builder, &parent);
        NEXT_IDS.with(|next| next.set(None));
        let built = span.span_context();
        if built.is_valid() && built.span_id() != span_id && !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "task spans get ids of their tracer provider's own: build it with artel_otel::provider() (RunIds), or a chain's steps will not link up"
            );
        }
        if let Some(error) = error {
            span.set_status(Status::error(error));
        }
        span.end();
    }
}

impl EventSink for TaskSpans {
    fn emit(&self, event: TaskEvent) {
        match event {
            TaskEvent::Received { id, name, retries, queue, trace, parent_span_id, .. } => {
                let mut open = self.open();
                if open.len() >= OPEN_LIMIT {
                    let cut = SystemTime::now() - Duration::from_secs(3600);
                    open.retain(|_, run| run.received >= cut);
                }
                let run =
                    Open { name, queue, retries, trace, parent_span_id, received: SystemTime::now(), started: None };
                open.insert(id, run);
            }
            TaskEvent::Started { id } => {
                if let Some(run) = self.open().get_mut(&id) {
                    run.started = Some(SystemTime::now());
                }
            }
            TaskEvent::Succeeded { id, .. } => self.end(&id, "SUCCESS", None),
            TaskEvent::Failed { id, error } => self.end(&id, "FAILURE", Some(error.to_string())),
            TaskEvent::Retried { id, error } => self.end(&id, "RETRY", Some(error.to_string())),
            TaskEvent::Revoked { id, .. } => self.end(&id, "REVOKED", None),
            TaskEvent::Rejected { id, error, .. } => self.end(&id, "REJECTED", Some(error.to_string())),
        }
    }
}

/// Sends made outside a task run continue the program's current OpenTelemetry span
/// (its trace, with that span as parent). Call once, at start.
pub fn continue_current_spans() {
    artel_core::trace::set_outer(current_span);
}

fn current_span() -> Option<TraceContext> {
    let context = Context::current();
    let span = context.span();
    let span = span.span_context();
    if !span.is_valid() {
        return None;
    }
    let state = span.trace_state().header();
    Some(TraceContext {
        trace_id: u128::from_be_bytes(span.trace_id().to_bytes()),
        span_id: u64::from_be_bytes(span.span_id().to_bytes()),
        flags: span.trace_flags().to_u8(),
        state: (!state.is_empty()).then_some(state),
    })
}

/// A tracer provider exporting over OTLP (HTTP/protobuf) as the environment says, or
/// `None` when export is not asked for: it is asked for by `OTEL_TRACES_EXPORTER=otlp` or
/// an `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, and turned off
/// by `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. The exporter reads the
/// other `OTEL_EXPORTER_OTLP_*` variables (headers, timeout), and the service is named by
/// `OTEL_SERVICE_NAME` (`artel` when unset) and `OTEL_RESOURCE_ATTRIBUTES`. Shut the
/// provider down at exit so the last spans leave.
pub fn from_env() -> Result<Option<SdkTracerProvider>, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let exporter_kind = var("OTEL_TRACES_EXPORTER").map(|v| v.to_ascii_lowercase());
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
    match exporter_kind.as_deref() {
        _ if disabled => return Ok(None),
        Some("none") => return Ok(None),
        Some("otlp") => {}
        Some(other) => {
            return Err(format!("OTEL_TRACES_EXPORTER={other} is not supported: artel exports with otlp (or none)"));
        }
        None if endpoint.is_none() => return Ok(None),
        None => {}
    }
    if let Some(protocol) = var("OTEL_EXPORTER_OTLP_PROTOCOL").filter(|p| p != "http/protobuf") {
        return Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: artel sends http/protobuf (port 4318)"
        ));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| format!("cannot build the OTLP span exporter (check OTEL_EXPORTER_OTLP_*): {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if var("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("artel");
    }
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
    tracing::info!(endpoint = endpoint.as_deref().unwrap_or("http://localhost:4318"), "exporting task spans over OTLP");
    Ok(Some(provider))
}
