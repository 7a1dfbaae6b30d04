//! Tasks in child processes (`artel worker --pool processes`, `#[artel::task(process)]`):
//! the worker's [`ProcessPool`] starts its program again in the child role, where
//! [`child_functions`] serves every registered task by name.
//!
//! A call carries the task's id, name and arguments as JSON; a task error comes back as
//! its Celery exception fields, so retries and FAILURE results read as they would
//! in-process. A child that dies fails its task with `WorkerLostError`; a hard time limit,
//! a revoke with `terminate` or a cold stop drops the call, which kills the child.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use artel_core::{Arguments, BoxFuture, Context, Message, Registry, TaskError, TaskErrorKind};
use artel_pool::{Functions, Handle, JobError, ProcessPool};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How a worker runs tasks in child processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSettings {
    /// Every task runs in a child (`--pool processes`); otherwise only the tasks
    /// declared `process`.
    pub all_tasks: bool,
    /// Children at once.
    pub processes: usize,
    /// Replace a child after this many tasks (`--max-tasks-per-child`).
    pub max_tasks_per_child: Option<u32>,
    /// Replace a child whose resident memory is past this after a task
    /// (`--max-memory-per-child`).
    pub max_memory_per_child: Option<u64>,
    /// Extra environment of the children (the worker's `--enable`, passed on).
    pub env: Vec<(String, String)>,
    /// The children's program and its arguments, when it is not this executable again
    /// (`artel worker --python`: a Python interpreter running artel's child module).
    pub program: Option<(std::path::PathBuf, Vec<std::ffi::OsString>)>,
}

impl ProcessSettings {
    /// Starts the pool (children start when tasks need them).
    pub(crate) fn start(&self) -> std::io::Result<ProcessPool> {
        let mut builder = ProcessPool::builder().processes(self.processes.max(1));
        if let Some(n) = self.max_tasks_per_child {
            builder = builder.max_tasks_per_child(n);
        }
        if let Some(bytes) = self.max_memory_per_child {
            builder = builder.max_memory_per_child(bytes);
        }
        // The program first: it replaces how children start, environment included.
        if let Some((program, args)) = &self.program {
            builder = builder.program(program, args.iter().cloned());
        }
        for (key, value) in &self.env {
            builder = builder.env(key, value);
        }
        builder.build()
    }
}

/// One task call as it travels to a child.
#[derive(Debug, Serialize, Deserialize)]
struct Call {
    id: String,
    task: String,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
    /// Retries so far (a Python task's `self.request.retries`).
    #[serde(default)]
    retries: u32,
    /// Seconds after which a Python child raises `SoftTimeLimitExceeded` in the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    soft_time_limit: Option<f64>,
    /// The rest of a Python task's `self.request`: `root_id`, `parent_id`, `group`,
    /// `eta`, `expires`, `correlation_id`, `reply_to`, `origin`, `delivery_info`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    request: Value,
}

/// Which run of which message a child call is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Run<'a> {
    pub(crate) message: &'a Message,
    /// Its delivery's count (a second or later delivery is `redelivered`).
    pub(crate) deliveries: u32,
    pub(crate) soft_time_limit: Option<Duration>,
}

impl Run<'_> {
    /// What Celery's `self.request` holds of the message beyond id, arguments and retries.
    fn request(&self) -> Value {
        let (h, p) = (&self.message.headers, &self.message.properties);
        let routing_key = match p.delivery_info.routing_key.as_str() {
            "" => self.message.queue(),
            key => key,
        };
        serde_json::json!({
            "root_id": h.root_id, "parent_id": h.parent_id, "group": h.group, "group_index": h.group_index,
            "eta": h.eta.as_ref().map(artel_core::time::to_iso),
            "expires": h.expires.as_ref().map(artel_core::time::to_iso),
            "correlation_id": p.correlation_id, "reply_to": p.reply_to, "origin": h.origin,
            "delivery_info": {
                "exchange": p.delivery_info.exchange, "routing_key": routing_key, "priority": p.priority,
                "redelivered": self.deliveries > 1,
            },
        })
    }
}

/// A task error as it travels back. `kind` says how the worker settles it (a Python
/// child's `TypeError` may be bad arguments or the task's own failure); without it, the
/// kind the exception's name stands for.
#[derive(Debug, Serialize, Deserialize)]
struct Failure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<TaskErrorKind>,
    exc_type: String,
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exc_module: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exc_args: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
}

impl Failure {
    fn of(error: &TaskError) -> Self {
        Self {
            kind: Some(error.kind()),
            exc_type: error.exc_type().to_owned(),
            message: error.message().to_owned(),
            exc_module: None,
            exc_args: None,
            traceback: error.traceback().map(str::to_owned),
            retry_after_ms: error.retry_after().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    fn into_error(self) -> TaskError {
        let kind = self.kind.unwrap_or_else(|| TaskErrorKind::from_exc_type(&self.exc_type));
        let mut error = TaskError::new(kind, self.exc_type, self.message);
        if let (Some(module), Some(args)) = (self.exc_module, self.exc_args) {
            error = error.raised_in(module, args);
        }
        if let Some(traceback) = self.traceback {
            error = error.with_traceback(traceback);
        }
        if let Some(ms) = self.retry_after_ms {
            error = error.after(Duration::from_millis(ms));
        }
        error
    }
}

/// The child's runtime for async task bodies: one thread, made on the first call.
fn child_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| {
            eprintln!("artel child {}: cannot start a runtime: {e}", std::process::id());
            std::process::exit(70)
        })
    })
}

/// What a worker's children serve: every task of `registry`, by name.
pub fn child_functions(registry: &Registry) -> Functions {
    let mut functions = Functions::new();
    for name in registry.names() {
        let Some(handler) = registry.get(name).cloned() else { continue };
        functions = functions.register(name, move |call: Value| {
            let call: Call = serde_json::from_value(call).map_err(|e| encode(&TaskError::msg(e)))?;
            let ctx = Context::detached(call.id, call.task);
            let run = handler.call(Arguments::new(call.args, call.kwargs), ctx);
            child_runtime().block_on(run).map_err(|error| encode(&error))
        });
    }
    functions
}

fn encode(error: &TaskError) -> String {
    serde_json::to_string(&Failure::of(error)).unwrap_or_else(|_| error.message().to_owned())
}

/// Runs `run` of its task in one of `pool`'s children. Dropping the future cancels
/// the call, which kills the child running it.
pub(crate) fn run_in_child(
    pool: &Arc<ProcessPool>,
    run: Run<'_>,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
) -> BoxFuture<'static, Result<Value, TaskError>> {
    let headers = &run.message.headers;
    let call = Call {
        id: headers.id.clone(),
        task: headers.task.clone(),
        args,
        kwargs,
        retries: headers.retries,
        soft_time_limit: run.soft_time_limit.map(|limit| limit.as_secs_f64()),
        request: run.request(),
    };
    let task = headers.task.as_str();
    let submitted = serde_json::to_value(&call)
        .map_err(TaskError::msg)
        .and_then(|call| pool.submit(task, call).map_err(TaskError::msg));
    Box::pin(async move {
        let handle = CancelOnDrop(Some(submitted?));
        handle.await.map_err(|error| match error {
            JobError::Failed(error) => {
                let raw = error.to_string();
                serde_json::from_str::<Failure>(&raw).map_or_else(|_| TaskError::msg(raw), Failure::into_error)
            }
            JobError::WorkerLost(why) => TaskError::of_kind(TaskErrorKind::WorkerLost, why),
            JobError::TimedOut(limit) => {
                TaskError::of_kind(TaskErrorKind::TimedOut, format!("hard time limit ({limit:?}) exceeded"))
            }
            other => TaskError::msg(other),
        })
    })
}

/// A call's handle that cancels the call (killing its child) when dropped unfinished.
struct CancelOnDrop(Option<Handle<Value>>);

impl std::future::Future for CancelOnDrop {
    type Output = Result<Value, JobError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let Some(handle) = self.0.as_mut() else { return std::task::Poll::Ready(Err(JobError::Cancelled)) };
        let outcome = std::pin::Pin::new(handle).poll(cx);
        if outcome.is_ready() {
            self.0 = None;
        }
        outcome
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.cancel();
        }
    }
}
