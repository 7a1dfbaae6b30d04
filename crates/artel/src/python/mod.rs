//! Python Celery tasks in an artel worker (`artel worker --python MODULE:APP`): the
//! worker does the broker I/O, acks, retries, limits, events and remote control; the
//! tasks run unchanged in Python child processes of its process pool, each importing the
//! app with the user's interpreter and packages.
//!
//! The child is a small module shipped inside the binary (`child.py`), written to a
//! private directory (mode 0700) when the app is loaded and removed with the
//! [`PythonApp`]. It speaks the process pool's frames: a call carries the task's id,
//! name, arguments and retries; `self.request` shows them to `bind=True` tasks, and
//! `self.retry(countdown=...)` (and so `autoretry_for`) asks the worker for a durable
//! retry instead of publishing one itself.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use artel_core::{Arguments, BoxFuture, Context, Handler, Registry, TaskError, TaskOptions};
use serde::Deserialize;
use serde_json::Value;

/// The child module, written next to nothing else in a private directory.
const CHILD: &str = include_str!("child.py");

/// The private directories' names: this, the worker's pid, a random number.
const DIR_PREFIX: &str = "artel-python-";

/// Removes the directories of workers that are gone (killed before they could remove
/// their own); a directory whose pid is alive, whoever it is now, is kept.
fn remove_stale(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|name| name.strip_prefix(DIR_PREFIX)).and_then(|rest| rest.split('-').next());
        let Some(pid) = pid.and_then(|pid| pid.parse::<u32>().ok()) else { continue };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Why a Python app could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PythonError {
    /// The private directory or the child module could not be written.
    #[error("cannot write artel's Python child module to {path}: {source}")]
    Write {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The interpreter could not be started.
    #[error("cannot start {python} (--python-exe): {source}")]
    Start {
        /// The interpreter.
        python: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Importing the app failed.
    #[error("cannot import the Celery app {spec} with {python}: {stderr}")]
    Import {
        /// `MODULE:APP`.
        spec: String,
        /// The interpreter.
        python: PathBuf,
        /// The end of what Python printed.
        stderr: String,
    },
    /// The app lists no task of its own.
    #[error("the Celery app {spec} has no tasks (only Celery's built-ins): check its imports or autodiscovery")]
    NoTasks {
        /// `MODULE:APP`.
        spec: String,
    },
}

/// A task as the child describes it.
#[derive(Debug, Deserialize)]
struct Described {
    name: String,
    /// Celery's `None` is unlimited.
    max_retries: Option<u32>,
    rate_limit: Option<String>,
    time_limit: Option<f64>,
    soft_time_limit: Option<f64>,
    /// `acks_late` and `reject_on_worker_lost` both set (the app's defaults included).
    reject_on_worker_lost: bool,
}

/// A Celery app whose tasks this worker's Python children run.
#[derive(Debug)]
pub struct PythonApp {
    spec: String,
    python: PathBuf,
    dir: PathBuf,
    tasks: Vec<Described>,
}

impl PythonApp {
    /// Imports `spec` (`MODULE:APP`, as `celery -A` takes it, from the current directory)
    /// with `python` and reads its tasks.
    pub fn load(spec: &str, python: &Path) -> Result<Self, PythonError> {
        remove_stale(&std::env::temp_dir());
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{}", std::process::id(), fastrand::u64(..)));
        let write = |source| PythonError::Write { path: dir.clone(), source };
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700).create(&dir).map_err(write)?;
        let mut app = Self { spec: spec.to_owned(), python: python.to_owned(), dir, tasks: Vec::new() };
        std::fs::write(app.child(), CHILD).map_err(|source| PythonError::Write { path: app.child(), source })?;
        let out = Command::new(python)
            .arg(app.child())
            .args(["list", spec])
            .output()
            .map_err(|source| PythonError::Start { python: python.to_owned(), source })?;
        let listed = serde_json::from_slice::<Vec<Described>>(&out.stdout).ok().filter(|_| out.status.success());
        let Some(tasks) = listed else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            let stderr = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
            return Err(PythonError::Import { spec: spec.to_owned(), python: python.to_owned(), stderr });
        };
        if tasks.is_empty() {
            return Err(PythonError::NoTasks { spec: spec.to_owned() });
        }
        app.tasks = tasks;
        Ok(app)
    }

    fn child(&self) -> PathBuf {
        self.dir.join("artel_child.py")
    }

    /// The app's task names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tasks.iter().map(|task| task.name.as_str()).collect()
    }

    /// The app's tasks as a worker registers them: each runs in a Python child, with the
    /// limits and retries its decorator declares.
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::new();
        let secs = |s: Option<f64>| s.and_then(|s| Duration::try_from_secs_f64(s).ok());
        for task in &self.tasks {
            let options = TaskOptions {
                max_retries: Some(task.max_retries.unwrap_or(u32::MAX)),
                rate_limit: task.rate_limit.clone(),
                time_limit: secs(task.time_limit),
                soft_time_limit: secs(task.soft_time_limit),
                reject_on_worker_lost: Some(task.reject_on_worker_lost),
                process: Some(true),
                ..TaskOptions::default()
            };
            registry.register_handler(&task.name, Arc::new(PythonTask { options }));
        }
        registry
    }

    /// The children's program: the interpreter running the child module for this app.
    pub fn program(&self) -> (PathBuf, Vec<OsString>) {
        let args = vec![self.child().into_os_string(), "serve".into(), self.spec.clone().into()];
        (self.python.clone(), args)
    }
}

impl Drop for PythonApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Python task as the worker's registry holds it: its options; it runs only in a child.
struct PythonTask {
    options: TaskOptions,
}

impl Handler for PythonTask {
    fn call(&self, _: Arguments, ctx: Context) -> BoxFuture<'static, Result<Value, TaskError>> {
        let error = TaskError::msg(format!("{} is a Python task: it runs in the worker's Python children", ctx.task()));
        Box::pin(async move { Err(error) })
    }

    fn options(&self) -> TaskOptions {
        self.options.clone()
    }

    fn signature(&self) -> &'static str {
        "(Python)"
    }
}
