//! Your own tasks with the whole artel CLI.
//!
//! ```sh
//! cargo run -p custom-cli -- worker -c 50 &            # serves app.add and app.word_count
//! cargo run -p custom-cli -- call app.add --args '[2, 3]' --wait
//! cargo run -p custom-cli -- call app.word_count --kwargs '{"text": "to be or not"}' --wait
//! seq 100 | cargo run -p custom-cli -- map --task app.flaky --retries 2   # every item ok, 3 attempts each
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{LazyLock, Mutex};

use artel::{Registry, TaskError};

/// Adds two integers; named like a Celery task so Python producers can call it too.
#[artel::task(name = "app.add")]
async fn add(x: i64, y: i64) -> Result<i64, TaskError> {
    x.checked_add(y).ok_or_else(|| TaskError::msg(format!("{x} + {y} overflows")))
}

/// Counts words and reports the longest one.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Words {
    count: usize,
    longest: Option<String>,
}

/// Counts the words of `text`.
#[artel::task(name = "app.word_count")]
async fn word_count(text: String) -> Words {
    let words: Vec<&str> = text.split_whitespace().collect();
    let longest = words.iter().max_by_key(|w| w.len()).map(|w| (*w).to_owned());
    Words { count: words.len(), longest }
}

/// Calls per key so far, for `flaky`.
static CALLS: LazyLock<Mutex<HashMap<String, u32>>> = LazyLock::new(Mutex::default);

/// An unreliable upstream: fails the first two calls for each key, then returns the key.
/// `artel map --retries 2` gets every key through.
#[artel::task(name = "app.flaky")]
async fn flaky(key: String) -> Result<String, TaskError> {
    let attempt = {
        let mut calls = CALLS.lock().unwrap_or_else(|e| e.into_inner());
        let count = calls.entry(key.clone()).or_default();
        *count += 1;
        *count
    };
    if attempt <= 2 { Err(TaskError::msg(format!("upstream busy (call {attempt} for {key})"))) } else { Ok(key) }
}

fn main() -> ExitCode {
    artel::cli::main(Registry::new().with(add).with(word_count).with(flaky))
}
