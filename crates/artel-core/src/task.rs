//! Named tasks with typed arguments, and the registry a worker dispatches from.
//!
//! `#[artel::task]` implements [`Task`] for a function; [`Registry`] erases tasks into
//! [`Handler`]s keyed by name, so the worker deals in JSON while task code stays typed.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::context::Context;
use crate::error::TaskError;
use crate::signature::TaskOptions;

/// A boxed, sendable future, the currency of erased task calls.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A task callable by name with JSON arguments.
pub trait Task: Send + Sync + 'static {
    /// The registered name (Celery's `app.task(name=...)`).
    const NAME: &'static str;
    /// What the task returns on success.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// Its parameters and result as written, e.g. `add(x: i64, y: i64) -> i64`, for
    /// `artel tasks`; empty when unknown.
    const SIGNATURE: &'static str = "";
    /// Its parameter names in order (the `Context` left out), for `{param}` in a lock key.
    const PARAMS: &'static [&'static str] = &[];

    /// Options the task declares (queue, retries, limits); calls may override them.
    fn options(&self) -> TaskOptions {
        TaskOptions::default()
    }

    /// Decodes `args` into typed parameters and runs the task; `ctx` is passed to a task
    /// that takes a `Context` parameter.
    fn run(&self, args: Arguments, ctx: Context) -> BoxFuture<'static, Result<Self::Output, TaskError>>;
}

/// The arguments of one call, read parameter by parameter like Python binds them:
/// by position first, else by keyword; a missing `Option` parameter reads as `None`.
#[derive(Debug, Default)]
pub struct Arguments {
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    used: usize,
}

impl Arguments {
    /// Arguments from a message body.
    pub fn new(args: Vec<Value>, kwargs: Map<String, Value>) -> Self {
        Self { args, kwargs, used: 0 }
    }

    /// Takes parameter `name` at `index`, decoding it as `T`.
    pub fn take<T: DeserializeOwned>(&mut self, index: usize, name: &str) -> Result<T, String> {
        let positional = self.args.get_mut(index).map(Value::take);
        let keyword = self.kwargs.remove(name);
        self.used = self.used.max(index + 1);
        let value = match (positional, keyword) {
            (Some(_), Some(_)) => return Err(format!("got multiple values for argument `{name}`")),
            (Some(v), None) | (None, Some(v)) => v,
            (None, None) => {
                return T::deserialize(Missing).map_err(|_| format!("missing required argument `{name}`"));
            }
        };
        serde_json::from_value(value).map_err(|e| format!("argument `{name}`: {e}"))
    }

    /// Checks nothing was left over after all parameters were taken.
    pub fn finish(self) -> Result<(), String> {
        if self.args.len() > self.used {
            return Err(format!("takes {} positional arguments but {} were given", self.used, self.args.len()));
        }
        match self.kwargs.keys().next() {
            Some(name) => Err(format!("got an unexpected keyword argument `{name}`")),
            None => Ok(()),
        }
    }
}

/// The value of an argument the call left out: `None` for an `Option` parameter, an
/// error for any other (a JSON `Value` parameter included, as Python raises TypeError).
struct Missing;

impl<'de> serde::Deserializer<'de> for Missing {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("missing"))
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_none()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct
        newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// A task erased to JSON in, JSON out.
pub trait Handler: Send + Sync {
    /// Runs the task with `args` and its context, returning its JSON result.
    fn call(&self, args: Arguments, ctx: Context) -> BoxFuture<'static, Result<Value, TaskError>>;
    /// The task's declared options.
    fn options(&self) -> TaskOptions;
    /// Its parameters and result as written ([`Task::SIGNATURE`]).
    fn signature(&self) -> &'static str;
    /// Its parameter names in order ([`Task::PARAMS`]).
    fn params(&self) -> &'static [&'static str] {
        &[]
    }
}

struct Erased<T>(T);

impl<T: Task> Handler for Erased<T> {
    fn call(&self, args: Arguments, ctx: Context) -> BoxFuture<'static, Result<Value, TaskError>> {
        let run = self.0.run(args, ctx);
        Box::pin(async move {
            let output = run.await?;
            serde_json::to_value(output)
                .map_err(|e| TaskError::msg(format!("task {} returned a value JSON cannot hold: {e}", T::NAME)))
        })
    }

    fn options(&self) -> TaskOptions {
        self.0.options()
    }

    fn signature(&self) -> &'static str {
        T::SIGNATURE
    }

    fn params(&self) -> &'static [&'static str] {
        T::PARAMS
    }
}

/// Tasks by name.
#[derive(Clone, Default)]
pub struct Registry {
    tasks: HashMap<String, Arc<dyn Handler>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `task` under its name, replacing any task registered under the same name.
    pub fn register<T: Task>(&mut self, task: T) -> &mut Self {
        self.tasks.insert(T::NAME.to_owned(), Arc::new(Erased(task)));
        self
    }

    /// Adds a task erased already, under `name` (tasks whose code lives elsewhere: a
    /// Python app's, run in Python children), replacing any task of the same name.
    pub fn register_handler(&mut self, name: &str, handler: Arc<dyn Handler>) -> &mut Self {
        self.tasks.insert(name.to_owned(), handler);
        self
    }

    /// Builder form of [`Registry::register`].
    pub fn with<T: Task>(mut self, task: T) -> Self {
        self.register(task);
        self
    }

    /// Adds every task of `other`, replacing tasks of the same name.
    pub fn extend(&mut self, other: Registry) -> &mut Self {
        self.tasks.extend(other.tasks);
        self
    }

    /// The task registered as `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Handler>> {
        self.tasks.get(name)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tasks.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("tasks", &self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(args: Value, kwargs: Value) -> Arguments {
        let (Value::Array(a), Value::Object(k)) = (args, kwargs) else { panic!("test input shape") };
        Arguments::new(a, k)
    }

    #[test]
    fn binds_positionally_then_by_keyword() {
        let mut a = args(json!([2]), json!({"y": 3}));
        assert_eq!(a.take::<i64>(0, "x"), Ok(2));
        assert_eq!(a.take::<i64>(1, "y"), Ok(3));
        assert_eq!(a.finish(), Ok(()));
    }

    #[test]
    fn missing_optional_is_none_missing_required_is_an_error() {
        let mut a = args(json!([]), json!({}));
        assert_eq!(a.take::<Option<i64>>(0, "x"), Ok(None));
        assert_eq!(a.take::<i64>(1, "y"), Err("missing required argument `y`".to_owned()));
        let err = a.take::<Value>(2, "value").expect_err("a JSON value is required too, as in Python");
        assert_eq!(err, "missing required argument `value`");
        assert_eq!(a.take::<Option<Value>>(3, "maybe"), Ok(None));
    }

    #[test]
    fn wrong_type_names_the_argument() {
        let mut a = args(json!(["two"]), json!({}));
        let err = a.take::<i64>(0, "x").expect_err("string is not i64");
        assert!(err.starts_with("argument `x`: invalid type: string \"two\""), "{err}");
    }

    #[test]
    fn leftovers_are_refused() {
        let mut a = args(json!([1, 2, 3]), json!({}));
        a.take::<i64>(0, "x").expect("x");
        a.take::<i64>(1, "y").expect("y");
        assert_eq!(a.finish(), Err("takes 2 positional arguments but 3 were given".to_owned()));
        let mut b = args(json!([1]), json!({"z": 1}));
        b.take::<i64>(0, "x").expect("x");
        assert_eq!(b.finish(), Err("got an unexpected keyword argument `z`".to_owned()));
    }

    #[test]
    fn duplicate_binding_is_refused() {
        let mut a = args(json!([1]), json!({"x": 1}));
        assert_eq!(a.take::<i64>(0, "x"), Err("got multiple values for argument `x`".to_owned()));
    }
}
