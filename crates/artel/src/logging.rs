//! Logs: `tracing` events to standard error, as text or JSON lines.
//!
//! `RUST_LOG`, when set, is the whole filter (`RUST_LOG=artel_runtime=debug,info`);
//! otherwise artel's crates log at the chosen level and everything else at `warn`. At
//! `info` a worker writes one line per task outcome (`succeeded`, `failed` with the
//! error's chain, `retried`, `revoked`, `rejected`) with the task's name, id and run time.

use tracing_subscriber::EnvFilter;

/// The crates whose events the level applies to.
const ARTEL_CRATES: [&str; 16] = [
    "artel",
    "artel_core",
    "artel_pool",
    "artel_runtime",
    "artel_sqlite",
    "artel_redis",
    "artel_postgres",
    "artel_celery",
    "artel_cli",
    "artel_lock",
    "artel_etcd",
    "artel_beat",
    "artel_dashboard",
    "artel_metrics",
    "artel_otel",
    "artel_supervise",
];

/// The levels `init` accepts.
pub const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the process's log subscriber, unless the program installed one already (then
/// its own stays and this returns `Ok(false)`).
pub fn init(level: &str, format: LogFormat) -> Result<bool, String> {
    if !LEVELS.contains(&level) {
        return Err(format!("unknown log level {level:?}: use one of {}", LEVELS.join(", ")));
    }
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .map_err(|e| format!("RUST_LOG={directives:?} is not a valid filter: {e}"))?,
        _ => {
            let ours: Vec<String> = ARTEL_CRATES.iter().map(|name| format!("{name}={level}")).collect();
            // lapin logs the connection errors artel reports itself, with their causes; sqlx
            // warns of every call that waited over 2 s for a pooled connection, which a
            // burst of thousands of sends (`artel map -c 10000`) does by design.
            EnvFilter::new(format!("warn,lapin=off,sqlx::pool::acquire=error,{}", ours.join(",")))
        }
    };
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(colour).with_env_filter(filter);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Ok(installed.is_ok())
}

/// What the library's in-process worker installs when the program has no subscriber:
/// `info` text lines (or `RUST_LOG`), so outcomes and errors are never silent.
pub(crate) fn init_default() {
    let _ = init("info", LogFormat::Text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_level_is_refused_with_the_choices() {
        let error = init("loud", LogFormat::Text).expect_err("refused");
        assert!(error.contains("use one of off, error, warn, info, debug, trace"), "{error}");
    }
}
