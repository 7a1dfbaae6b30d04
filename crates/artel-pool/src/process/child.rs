//! The child role: a process started by a [`super::ProcessPool`] runs registered
//! functions for it, one call at a time, until the pool closes the connection.

use std::collections::HashMap;
use std::fmt;
use std::os::unix::net::UnixStream;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use serde_json::Value;

use super::frame::{self, Reply, Request};
use crate::catch_unwind::panic_message;

/// The environment variable that puts a process in the child role: the path of the
/// socket its pool listens on.
pub(crate) const CHILD_ENV: &str = "ARTEL_POOL_CHILD";

/// One registered function: JSON arguments in, JSON value or error message out.
type Function = Arc<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;

/// The functions a process pool's children can run, by name (as `ProcessPoolExecutor`
/// needs picklable functions, a child finds its function by name in its own copy of
/// the program).
#[derive(Clone, Default)]
pub struct Functions {
    by_name: HashMap<String, Function>,
}

impl Functions {
    /// No functions yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `function` under `name`; it takes the call's JSON arguments.
    pub fn register<F>(mut self, name: &str, function: F) -> Self
    where
        F: Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    {
        self.by_name.insert(name.to_owned(), Arc::new(function));
        self
    }

    /// These functions and `other`'s (`other`'s win where both name one).
    pub fn merge(mut self, other: Functions) -> Self {
        self.by_name.extend(other.by_name);
        self
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    fn call(&self, request: Request) -> Reply {
        let Some(function) = self.by_name.get(&request.task) else {
            return Reply::Err(format!("NotRegistered: no function `{}` in this program", request.task));
        };
        match std::panic::catch_unwind(AssertUnwindSafe(|| function(request.args))) {
            Ok(Ok(value)) => Reply::Ok(value),
            Ok(Err(error)) => Reply::Err(error),
            Err(payload) => Reply::Err(format!("panicked: {}", panic_message(payload))),
        }
    }
}

impl fmt::Debug for Functions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.by_name.keys().collect();
        names.sort();
        f.debug_struct("Functions").field("names", &names).finish()
    }
}

/// Serves `functions` and exits when this process was started by a [`super::ProcessPool`];
/// returns at once otherwise. Call it first thing in `main`:
///
/// ```no_run
/// fn main() {
///     artel_pool::serve_if_child(&functions());
///     // ... the program as usual, which may build a ProcessPool over `functions()`
/// }
/// # fn functions() -> artel_pool::Functions { artel_pool::Functions::new() }
/// ```
///
/// A child serves one call at a time and exits when its pool closes the connection (or
/// with status 70 when it cannot reach its pool).
pub fn serve_if_child(functions: &Functions) {
    let Some(path) = std::env::var_os(CHILD_ENV) else { return };
    let code = match serve(functions, &path) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("artel process-pool child {}: {error}", std::process::id());
            70
        }
    };
    std::process::exit(code);
}

fn serve(functions: &Functions, path: &std::ffi::OsStr) -> std::io::Result<()> {
    let mut writer = UnixStream::connect(path)?;
    // Buffered: a batch of calls arrives in one read. Each answer leaves as soon as it
    // is ready, before the next call runs: a call that then crashes the child must not
    // take the answers of the calls before it along.
    let mut reader = std::io::BufReader::new(writer.try_clone()?);
    while let Some(request) = frame::read_blocking::<Request>(&mut reader)? {
        frame::write_blocking(&mut writer, &functions.call(request))?;
    }
    Ok(())
}
