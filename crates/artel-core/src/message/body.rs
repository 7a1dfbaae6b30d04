//! The protocol 2 body: `[args, kwargs, embed]`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::signature::Signature;

/// Positional and keyword arguments plus the workflow steps that follow the task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "(Vec<Value>, Map<String, Value>, Embed)", into = "(Vec<Value>, Map<String, Value>, Embed)")]
pub struct TaskBody {
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments.
    pub kwargs: Map<String, Value>,
    /// Callbacks, errbacks, remaining chain and chord body.
    pub embed: Embed,
}

impl From<(Vec<Value>, Map<String, Value>, Embed)> for TaskBody {
    fn from((args, kwargs, embed): (Vec<Value>, Map<String, Value>, Embed)) -> Self {
        Self { args, kwargs, embed }
    }
}

impl From<TaskBody> for (Vec<Value>, Map<String, Value>, Embed) {
    fn from(body: TaskBody) -> Self {
        (body.args, body.kwargs, body.embed)
    }
}

/// What runs after the task: Celery's `embed` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Embed {
    /// Signatures called with the result on success (`link`).
    #[serde(default)]
    pub callbacks: Option<Vec<Signature>>,
    /// Signatures called on failure (`link_error`).
    #[serde(default)]
    pub errbacks: Option<Vec<Signature>>,
    /// Remaining chain steps, next step last.
    #[serde(default)]
    pub chain: Option<Vec<Signature>>,
    /// Chord body to call when the group this task belongs to completes.
    #[serde(default)]
    pub chord: Option<Box<Signature>>,
}
