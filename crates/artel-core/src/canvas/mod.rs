//! Canvas: workflows as Celery signatures — [`chain`], [`group`], [`chord`], and
//! `map`/`starmap`/`chunks`, `link`/`link_error` on any signature.
//!
//! Composites are plain [`Signature`]s in Celery's dict form (`celery.chain` with
//! `kwargs.tasks`, `celery.chord` with `kwargs.header`/`kwargs.body`, ...), so they nest
//! inside messages and cross between Python and Rust unchanged. [`plan`] turns one into
//! the messages to publish; [`FollowUp`] says what a finished task's workflow does next,
//! and the worker plans and publishes that the same way.
//!
//! ```
//! use artel_core::Signature;
//! use artel_core::canvas::{chain, chord, group};
//! use serde_json::json;
//!
//! let add = |x: i64, y: i64| Signature::new("add").with_args(vec![json!(x), json!(y)]);
//! // fetch, then parse the page, then store what parsing returned.
//! let pipeline = chain([
//!     Signature::new("fetch").with_args(vec![json!("https://example.org")]),
//!     Signature::new("parse"),
//!     Signature::new("store").link_error(Signature::new("alert")),
//! ]);
//! // Ten additions at once, then their sum: the body gets every result, in order.
//! let fan_in = chord((0..10).map(|i| add(i, i)), Signature::new("total"));
//! let both = group([pipeline, fan_in]);
//! assert_eq!(both.task, "celery.group");
//! assert_eq!(serde_json::to_value(&both)?["kwargs"]["tasks"][1]["task"], "celery.chord");
//! // `App::send_task` / `App::send_group` publish them (see `artel::App`).
//! # Ok::<(), serde_json::Error>(())
//! ```

mod follow_up;
mod plan;

use serde_json::{Map, Value, json};

use crate::signature::Signature;

pub use follow_up::{ChordMember, Ended, FollowUp};
pub use plan::{Lineage, Outcome, Plan, by_queue, plan, publish};

/// Why a signature cannot be run as a workflow.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CanvasError {
    /// A composite's parts are missing or not signatures.
    #[error("malformed {kind} signature: {problem}")]
    Malformed {
        /// `chain`, `group` or `chord`.
        kind: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A chain with no steps.
    #[error("a chain needs at least one step")]
    EmptyChain,
    /// Nesting artel does not run (e.g. a chord as a group member).
    #[error("{0}")]
    Unsupported(String),
}

/// What a signature is, read from its Celery dict form.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// One task call (also `celery.map`/`celery.starmap`, which run as one task).
    Task,
    /// Steps run one after another, each given the previous result.
    Chain(Vec<Signature>),
    /// Members run in parallel.
    Group(Vec<Signature>),
    /// A group whose results, in member order, are passed to `body`.
    Chord {
        /// The members.
        header: Vec<Signature>,
        /// Called with the list of the members' results.
        body: Box<Signature>,
    },
}

/// Steps run one after another, each given the previous step's result (Celery `chain`).
pub fn chain(steps: impl IntoIterator<Item = Signature>) -> Signature {
    composite("celery.chain", "chain", json!({"tasks": to_values(steps)}))
}

/// Members run in parallel; results come back in member order (Celery `group`).
pub fn group(members: impl IntoIterator<Item = Signature>) -> Signature {
    composite("celery.group", "group", json!({"tasks": to_values(members)}))
}

/// The members run in parallel; `body` is called once with all their results, in member
/// order, when the last finishes (Celery `chord`).
pub fn chord(header: impl IntoIterator<Item = Signature>, body: Signature) -> Signature {
    composite("celery.chord", "chord", json!({"header": group(header), "body": body, "kwargs": {}}))
}

impl Signature {
    /// One task that calls this task once per item, each item as its only argument, and
    /// returns the list of results (Celery `task.map`).
    pub fn map(&self, items: Vec<Value>) -> Signature {
        builtin_iteration("celery.map", self, items)
    }

    /// Like [`Signature::map`], each item being the argument list of one call (Celery
    /// `task.starmap`).
    pub fn starmap(&self, items: Vec<Vec<Value>>) -> Signature {
        builtin_iteration("celery.starmap", self, items.into_iter().map(Value::from).collect())
    }

    /// A group of starmaps over `n`-item slices of `items` (Celery `task.chunks`).
    pub fn chunks(&self, items: Vec<Vec<Value>>, n: usize) -> Signature {
        group(items.chunks(n.max(1)).map(|slice| self.starmap(slice.to_vec())))
    }

    /// Calls `callback` with this task's result when it succeeds (Celery `link`).
    pub fn link(mut self, callback: Signature) -> Self {
        push_option(&mut self, "link", callback);
        self
    }

    /// Calls `errback` with this task's id when it fails for good (Celery `link_error`).
    pub fn link_error(mut self, errback: Signature) -> Self {
        push_option(&mut self, "link_error", errback);
        self
    }

    /// What this signature is: a task, or a chain, group or chord of signatures.
    pub fn shape(&self) -> Result<Shape, CanvasError> {
        match self.subtask_type.as_deref() {
            Some("chain") => Ok(Shape::Chain(signatures(self.kwargs.get("tasks"), "chain")?)),
            Some("group") => Ok(Shape::Group(signatures(self.kwargs.get("tasks"), "group")?)),
            Some("chord") => {
                let header: Signature = decode(self.kwargs.get("header"), "chord")?;
                let header = match header.shape()? {
                    Shape::Group(members) => members,
                    _ => vec![header],
                };
                Ok(Shape::Chord { header, body: Box::new(decode(self.kwargs.get("body"), "chord")?) })
            }
            _ => Ok(Shape::Task),
        }
    }

    /// The errbacks set with [`Signature::link_error`].
    pub fn link_errors(&self) -> Vec<Signature> {
        self.linked("link_error").unwrap_or_default()
    }

    /// The signatures in `options.link` / `options.link_error` (one or a list).
    pub(crate) fn linked(&self, key: &str) -> Option<Vec<Signature>> {
        let found = match self.options.extra.get(key)? {
            Value::Array(items) => items.iter().filter_map(|v| serde_json::from_value(v.clone()).ok()).collect(),
            one => serde_json::from_value(one.clone()).ok().into_iter().collect(),
        };
        Some(found)
    }
}

fn composite(task: &str, kind: &str, kwargs: Value) -> Signature {
    let mut sig = Signature::new(task);
    sig.kwargs = match kwargs {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    sig.subtask_type = Some(kind.to_owned());
    sig
}

fn builtin_iteration(task: &str, inner: &Signature, items: Vec<Value>) -> Signature {
    let mut sig = Signature::new(task).kwarg("task", to_value(inner)).kwarg("it", items);
    sig.immutable = true;
    sig
}

fn push_option(sig: &mut Signature, key: &str, linked: Signature) {
    let entry = sig.options.extra.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
    match entry {
        Value::Array(items) => items.push(to_value(&linked)),
        one => *one = Value::Array(vec![one.take(), to_value(&linked)]),
    }
}

/// Signatures are plain data; encoding one as JSON cannot fail.
pub(crate) fn to_value(sig: &Signature) -> Value {
    serde_json::to_value(sig).unwrap_or(Value::Null)
}

fn to_values(sigs: impl IntoIterator<Item = Signature>) -> Vec<Value> {
    sigs.into_iter().map(|s| to_value(&s)).collect()
}

fn decode(value: Option<&Value>, kind: &'static str) -> Result<Signature, CanvasError> {
    let value = value.ok_or_else(|| CanvasError::Malformed { kind, problem: "a part is missing".to_owned() })?;
    serde_json::from_value(value.clone()).map_err(|e| CanvasError::Malformed { kind, problem: e.to_string() })
}

fn signatures(value: Option<&Value>, kind: &'static str) -> Result<Vec<Signature>, CanvasError> {
    match value {
        Some(Value::Array(items)) => items.iter().map(|v| decode(Some(v), kind)).collect(),
        _ => Err(CanvasError::Malformed { kind, problem: "`kwargs.tasks` is not a list".to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composites_have_celerys_dict_form_and_read_back() {
        let add = |x: i64| Signature::new("add").with_args(vec![json!(x)]);
        let c = chord([add(1), add(2)], Signature::new("tsum"));
        let wire = serde_json::to_value(&c).expect("json");
        assert_eq!(wire["task"], "celery.chord");
        assert_eq!(wire["subtask_type"], "chord");
        assert_eq!(wire["kwargs"]["header"]["subtask_type"], "group");
        assert_eq!(wire["kwargs"]["header"]["kwargs"]["tasks"][1]["args"], json!([2]));
        let back: Signature = serde_json::from_value(wire).expect("parses");
        let Shape::Chord { header, body } = back.shape().expect("shape") else { panic!("a chord") };
        assert_eq!((header.len(), body.task.as_str()), (2, "tsum"));
    }

    #[test]
    fn map_starmap_and_chunks_are_celerys_builtins() {
        let add = Signature::new("add");
        let star = add.starmap(vec![vec![json!(1), json!(2)], vec![json!(3), json!(4)]]);
        assert_eq!((star.task.as_str(), star.immutable), ("celery.starmap", true));
        assert_eq!(star.kwargs["it"], json!([[1, 2], [3, 4]]));
        assert_eq!(star.kwargs["task"]["task"], "add");
        let items: Vec<Vec<Value>> = (0..5).map(|i| vec![json!(i), json!(i)]).collect();
        let Shape::Group(parts) = add.chunks(items, 2).shape().expect("shape") else { panic!("a group") };
        let sizes: Vec<usize> = parts.iter().map(|p| p.kwargs["it"].as_array().map_or(0, Vec::len)).collect();
        assert_eq!(sizes, vec![2, 2, 1]);
    }

    #[test]
    fn link_and_link_error_accumulate_in_the_options() {
        let sig =
            Signature::new("a").link(Signature::new("b")).link(Signature::new("c")).link_error(Signature::new("e"));
        let names = |key| sig.linked(key).unwrap_or_default().into_iter().map(|s| s.task).collect::<Vec<_>>();
        assert_eq!((names("link"), names("link_error")), (vec!["b".to_owned(), "c".to_owned()], vec!["e".to_owned()]));
    }
}
