//! Turning a panic inside a job into a value, so a panicking job never takes the pool down.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls the inner future, catching a panic as `Err(message)`; see [`catch_unwind`].
pub struct CatchUnwind<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> CatchUnwind<F> {
    pub(crate) fn new(inner: F) -> Self {
        record_panic_locations();
        Self { inner: Box::pin(inner) }
    }
}

thread_local! {
    /// Where the last panic on this thread happened (and its backtrace, when
    /// `RUST_BACKTRACE` asks for one), until [`last_panic_location`] takes it.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs, once per process, a panic hook that keeps each panic's location for
/// [`last_panic_location`] and then does what the hook before it did (the default one
/// prints the panic).
fn record_panic_locations() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let mut at = info.location().map_or_else(|| "panicked".to_owned(), |l| format!("panicked at {l}"));
            let backtrace = Backtrace::capture();
            if backtrace.status() == BacktraceStatus::Captured {
                at.push_str(&format!("\n{backtrace}"));
            }
            LAST_PANIC.with(|last| *last.borrow_mut() = Some(at));
            previous(info);
        }));
    });
}

/// Where the panic a [`CatchUnwind`] on this thread just caught happened (`panicked at
/// src/tasks.rs:12:5`, then the backtrace when `RUST_BACKTRACE=1`); read it right after
/// the `Err`, on the thread that polled.
pub fn last_panic_location() -> Option<String> {
    LAST_PANIC.with(|last| last.borrow_mut().take())
}

/// Runs `future`, turning a panic inside it into `Err(panic message)`.
pub fn catch_unwind<F: Future>(future: F) -> CatchUnwind<F> {
    CatchUnwind::new(future)
}

impl<F> std::fmt::Debug for CatchUnwind<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CatchUnwind")
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.inner.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload))),
        }
    }
}

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "panic with a non-string payload".to_owned(),
        },
    }
}
