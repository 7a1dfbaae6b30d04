//! artel's data model and seams.
//!
//! This crate holds what every other artel crate agrees on and nothing that does I/O:
//! Celery protocol 2 [`Message`]s, [`Signature`]s and their [`TaskOptions`], task
//! [`State`]s and stored [`TaskResult`]s, errors with a kind, the [`Broker`] /
//! [`Consumer`] / [`ResultBackend`] traits that backend crates implement, the [`Task`]
//! trait and [`Registry`], an injected [`Clock`], the `memory://` reference broker, and
//! [`leased::LeasedConsumer`], the consumer every leasing broker shares (brokers bring
//! only its storage verbs).

pub mod admin;
pub mod broker;
pub mod canvas;
pub mod context;
pub mod error;
pub mod events;
pub mod failed;
pub mod gathering;
pub mod history;
pub mod leased;
pub mod memory;
pub mod message;
pub mod queues;
pub mod rates;
pub mod redact;
pub mod result;
pub mod results;
pub mod retry;
pub mod signature;
pub mod state;
pub mod task;
pub mod time;
pub mod tls;
pub mod trace;
pub mod unique;
pub mod watch;
pub mod worker;

pub use admin::{Control, DeadMessage, Inspect, QueueCounts, WorkerRegistry, WorkerReport};
pub use broker::{Acknowledge, Broker, BrokerResult, Consumer, Delivery, Heartbeat, HeldTask, Holdings};
pub use context::{Cancelled, Context, Unstoppable};
pub use error::{BoxError, BrokerError, BrokerErrorKind, TaskError, TaskErrorKind};
pub use events::{EventSink, TaskEvent};
pub use failed::{FAILED_KEPT, FailedFilter, FailedTask, FailedTasks};
pub use gathering::Gathering;
pub use history::{HISTORY_KEPT, Minute, TaskFilter, TaskHistory, TaskRecord};
pub use message::{DecodeError, DeliveryInfo, Embed, Headers, Message, Properties, TaskBody};
pub use queues::Queues;
pub use rates::{Admission, RateLimits};
pub use redact::redact_url;
pub use result::{RESULT_EXPIRES, TaskResult};
pub use results::{Backend, Chords, ResultBackend, Revocation, Revocations};
pub use retry::{Backoff, RetryPolicy, retry};
pub use signature::{DEFAULT_QUEUE, Expires, Signature, TaskOptions, UNIQUE_FOR, arguments_digest};
pub use state::State;
pub use task::{Arguments, BoxFuture, Handler, Registry, Task};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
pub use tls::{TlsFiles, tls_hint};
pub use trace::TraceContext;
pub use unique::UniqueKeys;
pub use watch::{Announced, PolledFeed, ResultFeed, ResultWatch, StoreSignal};

/// Locks `mutex`, taking the data even if a thread panicked holding it: every mutex in
/// artel guards plain bookkeeping (sets of ids, counters) that a panic cannot leave half
/// written, so going on beats stopping the worker.
pub fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// This machine's name, for worker, producer and beat names (`artel.<pid>@<host>`); read
/// once, since the worker puts it in every STARTED/RECEIVED result it stores.
pub fn hostname() -> String {
    static HOSTNAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOSTNAME
        .get_or_init(|| {
            std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_owned()))
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".to_owned())
        })
        .clone()
}
