//! Memoized tasks (`cache_for = "10m"`): a successful result is kept in the backend's
//! shared cache under the task's name and its arguments (or the call's `cache_key`), and
//! a call finding it there is answered without running.
//!
//! Invariants: only successes are kept; a cached answer is stored as the call's SUCCESS
//! result with `cached: true` and counted as the `cached` outcome; a cache that fails or
//! is missing never fails a call, the task just runs (the cache logs why).

use std::sync::Arc;
use std::time::Duration;

use artel_cache::Cache;
use artel_core::message::CACHE_KEY_HEADER;
use artel_core::{Headers, TaskOptions};
use serde_json::{Map, Value};

use crate::execute::Dispatcher;

/// The prefix of the memoized results of `task` (of every task: `None`), as `artel cache
/// clear` removes them.
pub fn memo_prefix(task: Option<&str>) -> String {
    // `:` ends the name: clearing task `app` leaves `app.x`'s results alone.
    task.map_or_else(|| "memo.".to_owned(), |task| format!("memo.{task}:"))
}

/// A memoized call: where its result is cached, and for how long.
pub(crate) struct Memo {
    pub(crate) key: String,
    pub(crate) ttl: Duration,
}

/// The cache key of a call of `task`: its `cache_key` header, else a digest of its
/// arguments (equal arguments, equal key).
pub(crate) fn memo_key(task: &str, cache_key: Option<&str>, args: &[Value], kwargs: &Map<String, Value>) -> String {
    let prefix = memo_prefix(Some(task));
    match cache_key {
        Some(key) => format!("{prefix}key.{key}"),
        None => format!("{prefix}args.{}", artel_core::arguments_digest(args, kwargs)),
    }
}

impl Dispatcher {
    /// The call's memo when its task declares `cache_for` and the backend has a cache,
    /// with the value cached for it, if any.
    pub(crate) async fn recall(
        &self,
        options: &TaskOptions,
        headers: &Headers,
        args: &[Value],
        kwargs: &Map<String, Value>,
    ) -> Option<(Memo, Option<Value>)> {
        let ttl = options.cache_for?;
        let Some(cache) = &self.cache else {
            tracing::warn!(task = %headers.task, "memoized (cache_for), but this broker offers no shared cache: it runs every time");
            return None;
        };
        let cache_key = headers.extra.get(CACHE_KEY_HEADER).and_then(Value::as_str);
        let key = memo_key(&headers.task, cache_key, args, kwargs);
        let cached = cache.get::<Value>(&key).await;
        Some((Memo { key, ttl }, cached))
    }

    /// Keeps a run's successful `value` for the memo's time.
    pub(crate) async fn remember(&self, memo: &Memo, value: &Value) {
        if let Some(cache) = &self.cache {
            cache.set(&memo.key, value, Some(memo.ttl)).await;
        }
    }
}

/// The cache the worker memoizes in: the backend's shared one, if it has one.
pub(crate) fn cache_of(backend: &artel_core::Backend) -> Option<Cache> {
    backend.cache().map(|store| Cache::shared(Arc::clone(store)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn equal_arguments_share_a_key_and_a_cache_key_replaces_them() {
        let kwargs = |v: Value| v.as_object().cloned().unwrap_or_default();
        let a = memo_key("app.price", None, &[json!(7)], &kwargs(json!({"x": 1, "y": 2})));
        let b = memo_key("app.price", None, &[json!(7)], &kwargs(json!({"y": 2, "x": 1})));
        assert_eq!(a, b, "keyword order does not matter");
        assert!(a.starts_with("memo.app.price:args."), "{a}");
        assert!(a.starts_with(&memo_prefix(Some("app.price"))) && a.starts_with(&memo_prefix(None)));
        assert!(!a.starts_with(&memo_prefix(Some("app"))), "another task's prefix");
        assert_ne!(a, memo_key("app.price", None, &[json!(8)], &kwargs(json!({"x": 1, "y": 2}))));
        assert_ne!(a, memo_key("app.other", None, &[json!(7)], &kwargs(json!({"x": 1, "y": 2}))));
        assert_eq!(memo_key("app.price", Some("eur"), &[json!(7)], &Map::new()), "memo.app.price:key.eur");
    }
}
