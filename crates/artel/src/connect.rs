//! Broker URLs: `sqlite://artel.db` (default), `memory://`.

use std::sync::Arc;
use std::time::Duration;

use artel_core::memory::{MemoryBackend, MemoryBroker};
use artel_core::{Broker, BrokerError, ResultBackend, SystemClock};
use artel_sqlite::{SqliteBroker, SqliteConfig};

/// The broker URL used when none is given.
pub const DEFAULT_BROKER: &str = "sqlite://artel.db";

/// Why a broker URL could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The scheme is not one this build supports.
    #[error(
        "unsupported broker URL {url:?}: use sqlite://PATH (embedded, the default) or memory:// (this process only)"
    )]
    Unsupported {
        /// The URL as given.
        url: String,
    },
    /// A query parameter is unknown or malformed.
    #[error("broker URL {url:?}: {problem}")]
    BadParameter {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The broker could not be opened.
    #[error("cannot open broker {url:?}: {source}")]
    Open {
        /// The URL as given.
        url: String,
        /// The broker's error.
        #[source]
        source: BrokerError,
    },
}

/// An opened broker and result backend.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Where tasks are queued.
    pub broker: Arc<dyn Broker>,
    /// Where results are stored.
    pub backend: Arc<dyn ResultBackend>,
    /// The SQLite broker, for its inspection commands (queues, dead letters, workers).
    pub sqlite: Option<SqliteBroker>,
}

/// Opens the broker a URL names. `sqlite://PATH?lease_ms=N&poll_ms=N` tunes the lease
/// (how soon a dead worker's tasks come back) and the idle poll interval.
pub fn connect(url: &str) -> Result<Connection, ConnectError> {
    if url == "memory://" {
        return Ok(Connection {
            broker: Arc::new(MemoryBroker::new()),
            backend: Arc::new(MemoryBackend::new()),
            sqlite: None,
        });
    }
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return Err(ConnectError::Unsupported { url: url.to_owned() });
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err(ConnectError::BadParameter { url: url.to_owned(), problem: "no database path".to_owned() });
    }
    let mut config = SqliteConfig::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let bad = |problem: String| ConnectError::BadParameter { url: url.to_owned(), problem };
        let (key, value) = pair.split_once('=').ok_or_else(|| bad(format!("`{pair}` is not key=value")))?;
        let ms: u64 = value.parse().map_err(|_| bad(format!("{key}={value}: expected milliseconds")))?;
        match key {
            "lease_ms" if ms > 0 => config.lease = Duration::from_millis(ms),
            "poll_ms" if ms > 0 => config.poll_interval = Duration::from_millis(ms),
            "lease_ms" | "poll_ms" => return Err(bad(format!("{key} must be above 0"))),
            other => return Err(bad(format!("unknown parameter `{other}` (known: lease_ms, poll_ms)"))),
        }
    }
    let broker = SqliteBroker::open_with(path, config, Arc::new(SystemClock))
        .map_err(|source| ConnectError::Open { url: url.to_owned(), source })?;
    Ok(Connection { broker: Arc::new(broker.clone()), backend: Arc::new(broker.clone()), sqlite: Some(broker) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_schemes_and_parameters_are_explained() {
        let err = connect("redis://localhost").expect_err("unsupported");
        assert!(err.to_string().contains("use sqlite://PATH"), "{err}");
        let err = connect("sqlite:///tmp/x.db?lease=5").expect_err("bad parameter");
        assert!(err.to_string().contains("unknown parameter `lease`"), "{err}");
        let err = connect("sqlite:///tmp/x.db?lease_ms=soon").expect_err("bad value");
        assert!(err.to_string().contains("expected milliseconds"), "{err}");
    }

    #[test]
    fn an_unwritable_path_is_an_open_error() {
        let err = connect("sqlite:///proc/definitely/not/here.db").expect_err("cannot open");
        assert!(matches!(err, ConnectError::Open { .. }), "{err}");
    }
}
