//! Unique and mutex tasks on the worker.
//!
//! Invariants: a unique call's key is freed when the call ends for good (a result, a
//! failure, a dead letter), never on a retry or a hand-back, where it is still queued.
//! A mutex task (`lock = "report-{customer}"`) runs only while holding its lock (renewed
//! while held, freed within [`MUTEX_LEASE`] of a worker that died); a run that cannot
//! take it within its `lock_timeout` is published again for later, with a doubling
//! delay, and its slot freed: it never blocks a slot waiting.

use std::ops::ControlFlow;
use std::time::Duration;

use artel_core::message::UNIQUE_HEADER;
use artel_core::worker::Outcome;
use artel_core::{Delivery, Headers, TaskError, TaskOptions};

use artel_lock::Guard;
use serde_json::{Map, Value};

use crate::execute::Dispatcher;

/// How long a mutex task's lock outlives a worker that died holding it.
pub(crate) const MUTEX_LEASE: Duration = Duration::from_secs(30);

/// Why a task needing locks cannot run on a backend without them.
pub(crate) const NO_LOCKS: &str =
    "but this broker offers no locks: use sqlite://, redis://, postgres://, celery+redis:// or amqp://";

/// The header counting how often a mutex task found its lock taken.
const DEFERRED_HEADER: &str = "artel_deferred";

/// The longest a deferred mutex task waits before trying again.
const MAX_DEFER: Duration = Duration::from_secs(30);

/// Whether a mutex task may run, with its message when it does.
pub(crate) enum Turn {
    /// It declares no lock.
    Free(Delivery),
    /// It holds its lock until the guard drops.
    Held(Delivery, Guard),
    /// Its lock key cannot be made from the message: bad input.
    Bad(Delivery, TaskError),
    /// Its message was settled here (published again for later, or handed back).
    Settled,
}

/// A call that will not run now: its message to reject with why, or none when it was
/// settled already.
pub(crate) type Stop = Option<(Delivery, TaskError)>;

impl Turn {
    /// Goes on with the message and the guard to hold while it runs, or stops.
    pub(crate) fn into_run(self) -> ControlFlow<Stop, (Delivery, Option<Guard>)> {
        match self {
            Turn::Free(delivery) => ControlFlow::Continue((delivery, None)),
            Turn::Held(delivery, guard) => ControlFlow::Continue((delivery, Some(guard))),
            Turn::Bad(delivery, error) => ControlFlow::Break(Some((delivery, error))),
            Turn::Settled => ControlFlow::Break(None),
        }
    }
}

impl Dispatcher {
    /// Frees a unique call's key (see [`unique_claim`]) now that it ended for good.
    pub(crate) async fn release_unique(&self, claim: Option<(String, String)>) {
        let (Some((key, id)), Some(unique)) = (claim, &self.unique) else { return };
        if let Err(error) = unique.release_unique(&key, &id).await {
            tracing::warn!(%id, %key, %error, "could not free a unique key; it lapses after its unique_for");
        }
    }

    /// Takes the lock the task declares, waiting up to its `lock_timeout`; a run that
    /// does not get it is published again for later.
    pub(crate) async fn take_lock(
        &self,
        delivery: Delivery,
        options: &TaskOptions,
        params: &[&str],
        args: &[Value],
        kwargs: &Map<String, Value>,
    ) -> Turn {
        let Some(template) = options.lock.as_deref() else { return Turn::Free(delivery) };
        let headers = &delivery.message().headers;
        let (task, id) = (headers.task.clone(), headers.id.clone());
        let key = match call_key("task", &task, template, params, args, kwargs) {
            Ok(key) => key,
            Err(error) => return Turn::Bad(delivery, error),
        };
        let Some(locks) = &self.locks else {
            let error = TaskError::msg(format!("task {task} runs under lock {template:?}, {NO_LOCKS}"));
            return Turn::Bad(delivery, error);
        };
        match locks.acquire(&key, options.lock_timeout.unwrap_or_default()).await {
            Ok(guard) => Turn::Held(delivery, guard),
            Err(artel_lock::LockError::Timeout { .. }) => {
                let deferrals = times(headers, DEFERRED_HEADER);
                let wait = defer_delay(deferrals, fastrand::f64());
                tracing::info!(%task, %id, %key, ?wait, "its lock is held: published again for later");
                self.put_off(delivery, DEFERRED_HEADER, deferrals, wait).await
            }
            Err(error) => {
                tracing::warn!(%task, %id, %key, %error, "cannot reach the lock; the message goes back to the queue");
                self.hand_back_now(delivery).await
            }
        }
    }

    /// Publishes the message again to run after `wait`, with its `counter` header one
    /// more than `times`; counted as deferred.
    pub(crate) async fn put_off(&self, delivery: Delivery, counter: &str, times: u64, wait: Duration) -> Turn {
        let id = delivery.message().headers.id.clone();
        self.settled(delivery.message(), Outcome::Deferred);
        self.republish(delivery, &id, wait, |message| {
            message.headers.extra.insert(counter.to_owned(), Value::from(times + 1));
        })
        .await;
        Turn::Settled
    }

    /// Gives a message that cannot be decided on now (what decides is unreachable) back to
    /// the queue.
    pub(crate) async fn hand_back_now(&self, delivery: Delivery) -> Turn {
        let id = delivery.message().headers.id.clone();
        self.settled(delivery.message(), Outcome::HandedBack);
        crate::execute::settle(delivery.requeue().await, &id);
        Turn::Settled
    }
}

/// How many times a message was put off for `counter` (its header; 0 when absent).
pub(crate) fn times(headers: &Headers, counter: &str) -> u64 {
    headers.extra.get(counter).and_then(Value::as_u64).unwrap_or(0)
}

/// A unique call's (key, task id), read before its message is settled.
pub(crate) fn unique_claim(headers: &Headers) -> Option<(String, String)> {
    let key = headers.extra.get(UNIQUE_HEADER)?.as_str()?;
    Some((key.to_owned(), headers.id.clone()))
}

/// The wait before deferral `n + 1`: 1 s doubling to [`MAX_DEFER`], between half and all
/// of it (`jitter` in 0..1) so deferred runs do not return in step.
pub(crate) fn defer_delay(deferrals: u64, jitter: f64) -> Duration {
    let full = Duration::from_secs(1u64 << deferrals.min(5)).min(MAX_DEFER);
    full.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

/// The key of a call's lock (`kind` "task") or shared rate limit ("rate"): `template`
/// with each `{param}` replaced by that argument (strings as they are, anything else as
/// JSON), under `kind` and the task's name, made a valid lock key (other characters
/// escaped as `_xx`; a long key hashed).
pub(crate) fn call_key(
    kind: &str,
    task: &str,
    template: &str,
    params: &[&str],
    args: &[Value],
    kwargs: &Map<String, Value>,
) -> Result<String, TaskError> {
    let mut key = format!("{kind}.{task}.");
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        key.push_str(&rest[..open]);
        let close = rest[open..].find('}').ok_or_else(|| {
            TaskError::invalid_arguments(task, format!("{kind} key {template:?}: a `{{` is never closed"))
        })?;
        let name = &rest[open + 1..open + close];
        let value = params
            .iter()
            .position(|param| *param == name)
            .and_then(|index| args.get(index))
            .or_else(|| kwargs.get(name))
            .ok_or_else(|| {
                TaskError::invalid_arguments(task, format!("{kind} key {template:?}: no argument `{name}`"))
            })?;
        match value {
            Value::String(text) => key.push_str(text),
            other => key.push_str(&other.to_string()),
        }
        rest = &rest[open + close + 1..];
    }
    key.push_str(rest);
    Ok(lock_key(kind, &key))
}

/// `key` made a valid lock key: characters other than letters, digits, `.` and `-`
/// escaped as `_xx`, a long key hashed under `kind`.
pub(crate) fn lock_key(kind: &str, key: &str) -> String {
    let mut safe = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' => safe.push(char::from(byte)),
            other => safe.push_str(&format!("_{other:02x}")),
        }
    }
    if safe.len() > 200 {
        safe = format!("{kind}.{}", uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes()).simple());
    }
    safe
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lock_keys_read_arguments_by_position_or_name_and_stay_valid_keys() {
        let kwargs = |v: Value| v.as_object().cloned().unwrap_or_default();
        let key = |template: &str, args: Value, kw: Value| {
            let args = args.as_array().cloned().unwrap_or_default();
            call_key("task", "app.report", template, &["customer", "day"], &args, &kwargs(kw))
        };
        assert_eq!(key("r-{customer}", json!([7]), json!({})).expect("key"), "task.app.report.r-7");
        assert_eq!(key("r-{day}", json!([7]), json!({"day": "mon"})).expect("key"), "task.app.report.r-mon");
        assert_eq!(key("{customer}", json!(["a b@c"]), json!({})).expect("key"), "task.app.report.a_20b_40c");
        assert!(artel_lock::check_key(&key("{customer}", json!(["ü/../x"]), json!({})).expect("key")).is_ok());
        let long = key("{customer}", json!(["x".repeat(500)]), json!({})).expect("key");
        assert!(long.len() <= 200 && artel_lock::check_key(&long).is_ok(), "{long}");
        let missing = key("{day}", json!([7]), json!({})).expect_err("no day");
        assert!(missing.message().contains("no argument `day`"), "{missing}");
        assert!(key("{customer", json!([7]), json!({})).is_err());
    }

    #[test]
    fn deferrals_wait_longer_each_time_up_to_a_cap() {
        assert_eq!(defer_delay(0, 1.0), Duration::from_secs(1));
        assert_eq!(defer_delay(0, 0.0), Duration::from_millis(500));
        assert_eq!(defer_delay(3, 1.0), Duration::from_secs(8));
        assert_eq!(defer_delay(60, 1.0), MAX_DEFER, "no overflow, capped");
    }
}
