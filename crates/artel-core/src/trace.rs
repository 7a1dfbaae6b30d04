//! W3C trace context in task messages: a producer puts `traceparent` (and `tracestate`)
//! in the headers, the worker continues that trace in the run's span, and what the run
//! publishes (a chain's next step, callbacks, sends from inside the task) continues it
//! again with the run as parent.
//!
//! Invariants: a context always has a non-zero trace id and span id (a header with zero
//! ids, a bad version or bad hex is ignored, never trusted); a run keeps its message's
//! trace id and flags and has a span id of its own.

use std::fmt;

use serde_json::Value;

use crate::message::Headers;

/// One span's place in a trace.
#[derive(Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace, shared by every span of it.
    pub trace_id: u128,
    /// This span.
    pub span_id: u64,
    /// W3C trace flags (bit 0: sampled).
    pub flags: u8,
    /// Vendor state, passed along untouched.
    pub state: Option<String>,
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())
    }
}

fn nonzero_random<T: PartialEq + Default>(mut draw: impl FnMut() -> T) -> T {
    loop {
        let value = draw();
        if value != T::default() {
            return value;
        }
    }
}

impl TraceContext {
    /// A new trace: random ids, sampled.
    pub fn root() -> Self {
        Self {
            trace_id: nonzero_random(|| fastrand::u128(..)),
            span_id: nonzero_random(|| fastrand::u64(..)),
            flags: 1,
            state: None,
        }
    }

    /// Reads `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`) and `tracestate`; `None` for
    /// anything else.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit());
        if parts.next().is_some() || version != "00" || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok().filter(|id| *id != 0)?;
        let span_id = u64::from_str_radix(span, 16).ok().filter(|id| *id != 0)?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        let state = tracestate.map(str::trim).filter(|s| !s.is_empty() && s.len() <= 512).map(str::to_owned);
        Some(Self { trace_id, span_id, flags, state })
    }

    /// The `traceparent` header value.
    pub fn traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-{:02x}", self.trace_id, self.span_id, self.flags)
    }

    /// The trace id as 32 hex digits.
    pub fn trace_hex(&self) -> String {
        self.trace_display().to_string()
    }

    /// The trace id as 32 hex digits, written where displayed (no allocation).
    pub fn trace_display(&self) -> impl fmt::Display + use<> {
        struct Hex(u128);
        impl fmt::Display for Hex {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:032x}", self.0)
            }
        }
        Hex(self.trace_id)
    }

    /// The context a message carries, if a valid one.
    pub fn of(headers: &Headers) -> Option<Self> {
        let parent = headers.traceparent.as_ref()?.as_str()?;
        Self::parse(parent, headers.tracestate.as_ref().and_then(Value::as_str))
    }

    /// The context of a run of the message with `headers`: in the message's trace (or,
    /// when it carries none, a trace named by its workflow's root task, so every step of a
    /// workflow from a producer that sends no context shares one), with a span id derived
    /// from the task id and its retry count. Derived, not drawn: the worker's span and the
    /// follow-ups it publishes agree without passing it around.
    pub fn of_run(headers: &Headers) -> Self {
        let digest = |text: &str| uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, text.as_bytes()).as_u128();
        let span_id = (digest(&format!("{}/{}", headers.id, headers.retries)) as u64).max(1);
        match Self::of(headers) {
            Some(parent) => Self { span_id, ..parent },
            None => {
                let root = headers.root_id.as_deref().unwrap_or(&headers.id);
                Self { trace_id: digest(root).max(1), span_id, flags: 1, state: None }
            }
        }
    }

    /// Puts this context in `headers` (as the parent of the run that reads them).
    pub fn put(&self, headers: &mut Headers) {
        headers.traceparent = Some(Value::from(self.traceparent()));
        headers.tracestate = self.state.as_deref().map(Value::from);
    }
}

tokio::task_local! {
    /// The context of the task run in progress on this tokio task, if any.
    static CURRENT: TraceContext;
}

/// Where a program's own tracing keeps its current span, when it has one.
static OUTER: std::sync::OnceLock<fn() -> Option<TraceContext>> = std::sync::OnceLock::new();

/// Has sends made outside a task run continue the span `provider` names (OpenTelemetry's
/// current span: `artel_otel::continue_current_spans`). Set once; false if already set.
pub fn set_outer(provider: fn() -> Option<TraceContext>) -> bool {
    OUTER.set(provider).is_ok()
}

/// The trace context sends made here continue: the run in progress on this tokio task,
/// else the program's current span (see [`set_outer`]).
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok().or_else(|| OUTER.get().and_then(|provider| provider()))
}

/// Runs `future` with `context` as the current trace context.
pub async fn scope<F: std::future::Future>(context: TraceContext, future: F) -> F::Output {
    CURRENT.scope(context, future).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_bad_headers_are_ignored() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(text, Some("congo=t61rcWkgMzE")).expect("valid");
        assert_eq!(context.traceparent(), text);
        assert_eq!(context.trace_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.state.as_deref(), Some("congo=t61rcWkgMzE"));
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad, None).is_none(), "{bad:?}");
        }
        let mut headers = Headers::named("t", "id");
        assert!(TraceContext::of(&headers).is_none(), "no header: no context");
        context.put(&mut headers);
        assert_eq!(TraceContext::of(&headers), Some(context));
    }

    #[test]
    fn a_run_continues_its_messages_trace_or_one_named_by_its_root_task() {
        let mut headers = Headers::named("t", "id-1");
        headers.root_id = Some("root".to_owned());
        let untraced = TraceContext::of_run(&headers);
        assert_eq!(TraceContext::of_run(&headers), untraced, "derived: the same each time");
        let mut next_step = Headers::named("u", "id-2");
        next_step.root_id = Some("root".to_owned());
        let next = TraceContext::of_run(&next_step);
        assert_eq!(next.trace_id, untraced.trace_id, "one workflow, one trace");
        assert_ne!(next.span_id, untraced.span_id);
        headers.retries = 1;
        assert_ne!(TraceContext::of_run(&headers).span_id, untraced.span_id, "each retry is a span of its own");
        let producer = TraceContext::root();
        producer.put(&mut headers);
        let run = TraceContext::of_run(&headers);
        assert_eq!(run.trace_id, producer.trace_id, "a carried trace is continued");
        assert_ne!(run.span_id, producer.span_id);
    }
}
