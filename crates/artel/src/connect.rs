//! Broker URLs: `sqlite://artel.db` (default), `redis://host:port/db`, `memory://`, and
//! `celery+redis://host:port/db` (Celery's own layout, shared with Python Celery).

#[cfg(any(feature = "sqlite", feature = "redis", feature = "celery", feature = "postgres"))]
use std::sync::Arc;
#[cfg(any(feature = "sqlite", feature = "redis", feature = "celery", feature = "postgres"))]
use std::time::Duration;

#[cfg(feature = "celery")]
use artel_celery::amqp::{Amqp, AmqpConfig};
#[cfg(feature = "celery")]
use artel_celery::{CeleryRedis, CeleryRedisConfig, Wire};
#[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
use artel_core::SystemClock;
use artel_core::{Backend, BoxFuture, BrokerError};
#[cfg(feature = "redis")]
use artel_redis::{RedisBroker, RedisConfig};
#[cfg(feature = "sqlite")]
use artel_sqlite::{SqliteBroker, SqliteConfig};

/// The broker URL used when none is given.
pub const DEFAULT_BROKER: &str = "sqlite://artel.db";

/// Why a broker URL could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The scheme is not one this build supports.
    #[error(
        "unsupported broker URL {url:?}: use sqlite://PATH (embedded, the default), redis://HOST:PORT/DB (rediss:// over TLS), postgres://USER@HOST:5432/DB, celery+redis://HOST:PORT/DB (celery+rediss://) or amqp://HOST:5672//?results=redis://HOST:6379/0 (shared with Python Celery), or memory:// (this process only)"
    )]
    Unsupported {
        /// The URL as given, its password replaced by `***`.
        url: String,
    },
    /// The scheme needs a broker this build of artel was compiled without.
    #[error("broker URL {url:?} needs artel's `{feature}` feature, which this build was compiled without")]
    NotCompiledIn {
        /// The URL as given, its password replaced by `***`.
        url: String,
        /// The cargo feature to turn on.
        feature: &'static str,
    },
    /// A query parameter is unknown or malformed.
    #[error("broker URL {url:?}: {problem}")]
    BadParameter {
        /// The URL as given, its password replaced by `***`.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The broker could not be opened.
    #[error("cannot open broker {url:?}: {source}")]
    Open {
        /// The URL as given, its password replaced by `***`.
        url: String,
        /// The broker's error.
        #[source]
        source: BrokerError,
    },
}

/// An opened broker URL: the [`Backend`] its broker crate opened, and what the CLI needs
/// beyond it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The broker, its stores, and the operator capabilities it offers.
    pub backend: Backend,
    /// The Redis broker, for its admin commands.
    #[cfg(feature = "redis")]
    pub redis: Option<RedisBroker>,
    /// Where Celery's events and remote control travel (`celery+redis://`, `amqp://`).
    #[cfg(feature = "celery")]
    pub wire: Option<Arc<dyn Wire>>,
    /// The PostgreSQL broker, for sends inside the caller's transactions.
    #[cfg(feature = "postgres")]
    pub postgres: Option<artel_postgres::PostgresBroker>,
    /// Where the broker is, as `inspect stats` and `inspect conf` describe it (kombu's
    /// `transport`, `hostname`, `port`, `virtual_host`), without credentials.
    pub broker_info: serde_json::Value,
}

impl From<Backend> for Connection {
    fn from(backend: Backend) -> Self {
        Connection {
            backend,
            #[cfg(feature = "redis")]
            redis: None,
            #[cfg(feature = "postgres")]
            postgres: None,
            #[cfg(feature = "celery")]
            wire: None,
            broker_info: serde_json::json!({"transport": "memory", "hostname": "", "port": 0, "virtual_host": ""}),
        }
    }
}

impl Connection {
    /// This connection sending a `task-sent` event for each task it publishes (Celery's
    /// `task_send_sent_event`; `?sent_events=true` in the URL), where it has a Celery
    /// wire; else unchanged.
    #[cfg(feature = "celery")]
    pub fn sending_sent_events(mut self) -> Self {
        if let Some(wire) = &self.wire {
            let broker = self.backend.broker().clone();
            let sent = artel_celery::SentEvents::new(broker, wire.clone(), crate::app::origin());
            self.backend = self.backend.with_broker(Arc::new(sent));
        }
        self
    }
}

/// `url` as kombu describes a broker: `transport` (the scheme), `hostname`, `port`
/// (0 when not given) and `virtual_host` (the path: a database; SQLite's file); never the
/// credentials or the settings after `?`.
fn broker_info(url: &str) -> serde_json::Value {
    let (transport, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    if transport == "sqlite" {
        return serde_json::json!({"transport": transport, "hostname": "", "port": 0, "virtual_host": rest});
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let with_port = host_port.rsplit_once(':').and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)));
    let (hostname, port) = with_port.unwrap_or((host_port, 0));
    serde_json::json!({"transport": transport, "hostname": hostname, "port": port, "virtual_host": path})
}

/// URL query settings: `lease_ms` (for celery+redis: the visibility timeout), `poll_ms`,
/// and `prefix` (Redis keys; for celery+redis kombu's `global_keyprefix`).
#[derive(Default)]
#[cfg(any(feature = "sqlite", feature = "redis", feature = "celery"))]
struct Params {
    lease: Option<Duration>,
    poll: Option<Duration>,
    prefix: Option<String>,
    /// amqp:// only: where results go (a redis:// URL, Celery's Redis result backend).
    results: Option<String>,
    /// amqp:// only: declare queues with `x-max-priority`.
    max_priority: Option<u8>,
    /// TLS schemes only: certificate files (`ca`, `cert`, `key`), else `ARTEL_TLS_*`.
    tls: artel_core::TlsFiles,
    /// Native Redis layouts: replicas that must confirm each publish (`WAIT`).
    replicas: u32,
    /// `sentinel://` only: the master's name (kombu's `master_name`).
    master_name: Option<String>,
    /// Celery's layouts only: send `task-sent` events (Celery's `task_send_sent_event`).
    sent_events: bool,
}

/// `rest`, what follows a URL's scheme, as its address and its query settings.
#[cfg(any(feature = "sqlite", feature = "redis", feature = "celery"))]
fn params<'a>(url: &str, rest: &'a str, allow_prefix: bool) -> Result<(&'a str, Params), ConnectError> {
    let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut out = Params::default();
    let tls = TLS_SCHEMES.iter().any(|scheme| url.starts_with(scheme));
    let mut known = vec!["lease_ms", "poll_ms"];
    let native = ["redis://", "rediss://", "redis+sentinel://", "redis+cluster://"].iter().any(|s| url.starts_with(s));
    let celery = ["celery+redis://", "celery+rediss://", "sentinel://", "amqp://", "amqps://"]
        .iter()
        .any(|s| url.starts_with(s));
    for (extra, applies) in [
        (&["prefix"][..], allow_prefix),
        (&["ca", "cert", "key"], tls),
        (&["replicas"], native),
        (&["master_name"], url.starts_with("sentinel://")),
        (&["results", "max_priority"], url.starts_with("amqp://") || url.starts_with("amqps://")),
        (&["sent_events"], celery),
    ] {
        if applies {
            known.extend_from_slice(extra);
        }
    }
    let known = known.join(", ");
    out.tls = tls_from_env(url);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let bad = |problem: String| ConnectError::BadParameter { url: artel_core::redact_url(url), problem };
        let (key, value) = pair.split_once('=').ok_or_else(|| bad(format!("`{pair}` is not key=value")))?;
        if tls && matches!(key, "ca" | "cert" | "key") && !value.is_empty() {
            let path = Some(std::path::PathBuf::from(value));
            match key {
                "ca" => out.tls.ca = path,
                "cert" => out.tls.cert = path,
                _ => out.tls.key = path,
            }
            continue;
        }
        if key == "prefix" && allow_prefix && !value.is_empty() {
            out.prefix = Some(value.to_owned());
            continue;
        }
        if key == "replicas" && native {
            out.replicas = value.parse().map_err(|_| bad(format!("{key}={value}: expected a number of replicas")))?;
            continue;
        }
        if key == "master_name" && url.starts_with("sentinel://") && !value.is_empty() {
            out.master_name = Some(value.to_owned());
            continue;
        }
        if key == "sent_events" && celery {
            out.sent_events = match value {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => return Err(bad(format!("{key}={value}: expected true or false"))),
            };
            continue;
        }
        if key == "results" && (url.starts_with("amqp://") || url.starts_with("amqps://")) {
            out.results = Some(value.to_owned());
            continue;
        }
        if key == "max_priority" && (url.starts_with("amqp://") || url.starts_with("amqps://")) {
            let max = value.parse::<u8>().ok().filter(|m| *m > 0);
            out.max_priority = Some(max.ok_or_else(|| bad(format!("{key}={value}: expected 1 to 255")))?);
            continue;
        }
        let ms = || value.parse::<u64>().ok().filter(|ms| *ms > 0).map(Duration::from_millis);
        match key {
            "lease_ms" => {
                out.lease = Some(ms().ok_or_else(|| bad(format!("{key}={value}: expected milliseconds above 0")))?)
            }
            "poll_ms" => {
                out.poll = Some(ms().ok_or_else(|| bad(format!("{key}={value}: expected milliseconds above 0")))?)
            }
            other => return Err(bad(format!("unknown parameter `{other}` (known: {known})"))),
        }
    }
    Ok((address, out))
}

/// The schemes that connect over TLS.
#[cfg(any(feature = "sqlite", feature = "redis", feature = "celery"))]
const TLS_SCHEMES: [&str; 3] = ["rediss://", "celery+rediss://", "amqps://"];

/// The `ARTEL_TLS_CA_FILE`, `ARTEL_TLS_CERT_FILE` and `ARTEL_TLS_KEY_FILE` certificate
/// files, for a URL over TLS (none for others).
#[cfg(any(feature = "sqlite", feature = "redis", feature = "celery"))]
fn tls_from_env(url: &str) -> artel_core::TlsFiles {
    let tls = TLS_SCHEMES.iter().any(|scheme| url.starts_with(scheme));
    let file = |name: &str| std::env::var_os(name).filter(|v| tls && !v.is_empty()).map(std::path::PathBuf::from);
    artel_core::TlsFiles {
        ca: file("ARTEL_TLS_CA_FILE"),
        cert: file("ARTEL_TLS_CERT_FILE"),
        key: file("ARTEL_TLS_KEY_FILE"),
    }
}

/// What opening one scheme's URL yields.
type Opening<'a> = BoxFuture<'a, Result<Connection, ConnectError>>;

/// URL schemes opened the same way: their prefixes, the cargo feature that builds them,
/// and how to open what follows the prefix (`None` when this build was compiled without
/// the feature).
struct Scheme {
    prefixes: &'static [&'static str],
    feature: &'static str,
    open: Option<for<'a> fn(&'a str, &'a str) -> Opening<'a>>,
}

/// Every scheme; the openers tell the variants (TLS, Sentinel) apart by the URL.
const SCHEMES: &[Scheme] = &[
    Scheme {
        prefixes: &["amqp://", "amqps://"],
        feature: "celery",
        #[cfg(feature = "celery")]
        open: Some(|url, _| Box::pin(connect_amqp(url))),
        #[cfg(not(feature = "celery"))]
        open: None,
    },
    Scheme {
        prefixes: &["celery+redis://", "celery+rediss://", "sentinel://"],
        feature: "celery",
        #[cfg(feature = "celery")]
        open: Some(|url, rest| Box::pin(connect_celery_redis(url, rest))),
        #[cfg(not(feature = "celery"))]
        open: None,
    },
    Scheme {
        prefixes: &["redis://", "rediss://", "redis+sentinel://", "redis+cluster://"],
        feature: "redis",
        #[cfg(feature = "redis")]
        open: Some(|url, rest| Box::pin(connect_redis(url, rest))),
        #[cfg(not(feature = "redis"))]
        open: None,
    },
    Scheme {
        prefixes: &["postgres://", "postgresql://"],
        feature: "postgres",
        #[cfg(feature = "postgres")]
        open: Some(|url, _| Box::pin(connect_postgres(url))),
        #[cfg(not(feature = "postgres"))]
        open: None,
    },
    Scheme { prefixes: &["memory://"], feature: "", open: Some(|url, rest| Box::pin(connect_memory(url, rest))) },
    Scheme {
        prefixes: &["sqlite://"],
        feature: "sqlite",
        #[cfg(feature = "sqlite")]
        open: Some(|url, rest| Box::pin(std::future::ready(connect_sqlite(url, rest)))),
        #[cfg(not(feature = "sqlite"))]
        open: None,
    },
];

/// Opens the broker a URL names. `?lease_ms=N` sets how soon a dead worker's tasks come
/// back, `?poll_ms=N` how long an idle consumer waits before looking again.
pub async fn connect(url: &str) -> Result<Connection, ConnectError> {
    for scheme in SCHEMES {
        let Some(rest) = scheme.prefixes.iter().find_map(|prefix| url.strip_prefix(prefix)) else { continue };
        return match scheme.open {
            Some(open) => Ok(Connection { broker_info: broker_info(url), ..open(url, rest).await? }),
            None => Err(ConnectError::NotCompiledIn { url: artel_core::redact_url(url), feature: scheme.feature }),
        };
    }
    Err(ConnectError::Unsupported { url: artel_core::redact_url(url) })
}

/// `memory://`: this process only.
async fn connect_memory(url: &str, rest: &str) -> Result<Connection, ConnectError> {
    if !rest.is_empty() {
        let problem = "memory:// takes no address or settings".to_owned();
        return Err(ConnectError::BadParameter { url: artel_core::redact_url(url), problem });
    }
    Ok(artel_core::memory::backend().into())
}

/// Turns a broker's failure to open into the error that names the URL (password hidden).
#[cfg(any(feature = "sqlite", feature = "redis", feature = "celery", feature = "postgres"))]
fn opening(url: &str) -> impl Fn(BrokerError) -> ConnectError + '_ {
    move |source| ConnectError::Open { url: artel_core::redact_url(url), source }
}

/// `celery+redis://host:port/db?prefix=P`: Celery's own Redis layout (`celery+rediss://`
/// over TLS, with `ca`, `cert` and `key` files; kombu's
/// `sentinel://S1;sentinel://S2/DB?master_name=M` through Sentinel).
#[cfg(feature = "celery")]
async fn connect_celery_redis(url: &str, rest: &str) -> Result<Connection, ConnectError> {
    let (address, p) = params(url, rest, true)?;
    let (target, sentinel) = match url.starts_with("sentinel://") {
        true => sentinel_target(url, &format!("sentinel://{address}"), p.master_name.as_deref())?,
        false => {
            (format!("{}://{address}", if url.starts_with("celery+rediss://") { "rediss" } else { "redis" }), None)
        }
    };
    let defaults = CeleryRedisConfig::default();
    let config = CeleryRedisConfig {
        prefix: p.prefix.unwrap_or(defaults.prefix),
        visibility_timeout: p.lease.unwrap_or(defaults.visibility_timeout),
        poll: p.poll.unwrap_or(defaults.poll),
        tls: p.tls,
        sentinel,
    };
    let broker = CeleryRedis::connect(&target, config).await.map_err(opening(url))?;
    let connection = Connection { wire: Some(Arc::new(broker.clone())), ..broker.backend().into() };
    Ok(if p.sent_events { connection.sending_sent_events() } else { connection })
}

/// `redis://host:port/db?prefix=P`: artel's own Redis broker (`rediss://` over TLS, with
/// `ca`, `cert` and `key` files; `redis+sentinel://S1,S2/MASTER/DB` through Sentinel;
/// `redis+cluster://H1:P1,H2:P2` sharded over a Redis Cluster; `?replicas=N` to wait
/// for replicas on each publish).
#[cfg(feature = "redis")]
async fn connect_redis(url: &str, rest: &str) -> Result<Connection, ConnectError> {
    let (address, p) = params(url, rest, true)?;
    let (target, sentinel) = match url.starts_with("redis+sentinel://") {
        true => sentinel_target(url, &format!("redis+sentinel://{address}"), None)?,
        false if url.starts_with(artel_redis::cluster::SCHEME) => {
            (format!("{}{address}", artel_redis::cluster::SCHEME), None)
        }
        false => (format!("{}://{address}", if url.starts_with("rediss://") { "rediss" } else { "redis" }), None),
    };
    let defaults = RedisConfig::default();
    let config = RedisConfig {
        prefix: p.prefix.unwrap_or(defaults.prefix),
        lease: p.lease.unwrap_or(defaults.lease),
        idle_wait: p.poll.unwrap_or(defaults.idle_wait),
        tls: p.tls,
        sentinel,
        replicas: p.replicas,
        ..defaults
    };
    let broker = RedisBroker::connect_with(&target, config, Arc::new(SystemClock)).await.map_err(opening(url))?;
    Ok(Connection { redis: Some(broker.clone()), ..gathering(broker.backend()).into() })
}

/// A Sentinel URL (`sentinel`, without its query) as the URL of its master's database,
/// whose host the broker replaces by the master's, and the sentinels to ask.
#[cfg(any(feature = "redis", feature = "celery"))]
fn sentinel_target(
    url: &str,
    sentinel: &str,
    master: Option<&str>,
) -> Result<(String, Option<artel_redis::sentinel::SentinelSet>), ConnectError> {
    let parsed = artel_redis::sentinel::parse(sentinel, master)
        .map_err(|problem| ConnectError::BadParameter { url: artel_core::redact_url(url), problem })?;
    Ok((format!("redis://{}sentinel-master/{}", parsed.userinfo, parsed.db), Some(parsed.set)))
}

/// `postgres://user:pass@host:5432/db?schema=artel&lease_ms=N&poll_ms=N&pool_size=N`: the
/// PostgreSQL broker (`pool_size`: connections in each of its two pools). Other parameters (`sslmode`, `application_name`…) go to the driver.
#[cfg(feature = "postgres")]
async fn connect_postgres(url: &str) -> Result<Connection, ConnectError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut config = artel_postgres::PostgresConfig::default();
    let mut passed = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let bad = |problem: String| ConnectError::BadParameter { url: artel_core::redact_url(url), problem };
        let (key, value) = pair.split_once('=').ok_or_else(|| bad(format!("`{pair}` is not key=value")))?;
        let ms = || value.parse::<u64>().ok().filter(|ms| *ms > 0).map(Duration::from_millis);
        match key {
            "schema" => config.schema = value.to_owned(),
            "lease_ms" => {
                config.lease = ms().ok_or_else(|| bad(format!("{key}={value}: expected milliseconds above 0")))?
            }
            "poll_ms" => {
                config.poll_interval =
                    ms().ok_or_else(|| bad(format!("{key}={value}: expected milliseconds above 0")))?
            }
            "pool_size" => {
                config.pool_size = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(format!("{key}={value}: expected a number of connections above 0")))?
            }
            _ => passed.push(pair),
        }
    }
    let driver_url = if passed.is_empty() { base.to_owned() } else { format!("{base}?{}", passed.join("&")) };
    let broker = artel_postgres::PostgresBroker::connect_with(&driver_url, config, Arc::new(SystemClock))
        .await
        .map_err(opening(url))?;
    Ok(Connection { postgres: Some(broker.clone()), ..gathering(broker.backend()).into() })
}

/// `backend` with its small publishes gathered into one call per queue
/// ([`artel_core::Gathering`]): for brokers where a call is a round trip and a publish of
/// many is all or nothing (one Redis script, one PostgreSQL statement).
#[cfg(any(feature = "redis", feature = "postgres"))]
fn gathering(backend: Backend) -> Backend {
    let gathered = artel_core::Gathering::new(backend.broker().clone());
    backend.with_broker(Arc::new(gathered))
}

/// `sqlite://path`: the embedded broker.
#[cfg(feature = "sqlite")]
fn connect_sqlite(url: &str, rest: &str) -> Result<Connection, ConnectError> {
    if rest.is_empty() || rest.starts_with('?') {
        return Err(ConnectError::BadParameter {
            url: artel_core::redact_url(url),
            problem: "no database path".to_owned(),
        });
    }
    let (path, p) = params(url, rest, false)?;
    let defaults = SqliteConfig::default();
    let config = SqliteConfig {
        lease: p.lease.unwrap_or(defaults.lease),
        poll_interval: p.poll.unwrap_or(defaults.poll_interval),
        result_poll: p.poll.map_or(defaults.result_poll, |poll| poll.min(defaults.result_poll)),
        ..defaults
    };
    let broker = SqliteBroker::open_with(path, config, Arc::new(SystemClock)).map_err(opening(url))?;
    Ok(broker.backend().into())
}

/// `amqp://user:pass@host:5672/vhost?results=redis://host:6379/0&prefix=P&max_priority=N`:
/// tasks on RabbitMQ in Celery's layout, results in Celery's Redis result backend
/// (`amqps://` over TLS, with `ca`, `cert` and `key` files).
#[cfg(feature = "celery")]
async fn connect_amqp(url: &str) -> Result<Connection, ConnectError> {
    let (address, p) = params(url, url, true)?;
    let Some(results) = p.results else {
        return Err(ConnectError::BadParameter {
            url: artel_core::redact_url(url),
            problem: "amqp:// needs a result backend: add ?results=redis://HOST:6379/0 (Celery's Redis result backend)"
                .to_owned(),
        });
    };
    let config = AmqpConfig { max_priority: p.max_priority, tls: p.tls, ..AmqpConfig::default() };
    let broker = Amqp::connect(address, config).await.map_err(opening(url))?;
    let config = CeleryRedisConfig {
        prefix: p.prefix.unwrap_or_default(),
        tls: tls_from_env(&results),
        ..CeleryRedisConfig::default()
    };
    let results = CeleryRedis::connect(&results, config).await.map_err(opening(url))?;
    let wire: Arc<dyn Wire> = Arc::new(broker.clone());
    let connection = Connection { wire: Some(wire), ..broker.backend(results).into() };
    Ok(if p.sent_events { connection.sending_sent_events() } else { connection })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_schemes_and_parameters_are_explained() {
        let err = connect("kafka://localhost").await.expect_err("unsupported");
        assert!(err.to_string().contains("use sqlite://PATH"), "{err}");
        let err = connect("amqp://localhost//").await.expect_err("no result backend, or no amqp in this build");
        let expected = if cfg!(feature = "celery") { "add ?results=redis://" } else { "`celery` feature" };
        assert!(err.to_string().contains(expected), "{err}");
    }

    #[test]
    fn a_broker_is_described_as_kombu_does_without_its_credentials() {
        let info = broker_info("redis://:s3cret@10.0.0.5:6380/2?prefix=x");
        assert_eq!(
            info,
            serde_json::json!({"transport": "redis", "hostname": "10.0.0.5", "port": 6380, "virtual_host": "2"})
        );
        let info = broker_info("postgres://user:pw@[::1]/jobs");
        assert_eq!(
            info,
            serde_json::json!({"transport": "postgres", "hostname": "[::1]", "port": 0, "virtual_host": "jobs"})
        );
        let info = broker_info("sqlite://data/artel.db?poll_ms=5");
        assert_eq!(
            info,
            serde_json::json!({"transport": "sqlite", "hostname": "", "port": 0, "virtual_host": "data/artel.db"})
        );
        assert!(!broker_info("amqp://guest:guest@host:5672/%2f").to_string().contains("guest"));
    }

    #[cfg(all(feature = "celery", feature = "sqlite"))]
    #[tokio::test]
    async fn sent_events_are_a_switch_of_celerys_layouts_only() {
        let err = connect("celery+redis://127.0.0.1:1/0?sent_events=maybe").await.expect_err("not a switch");
        assert!(err.to_string().contains("sent_events=maybe: expected true or false"), "{err}");
        let err = connect("sqlite:///tmp/x.db?sent_events=true").await.expect_err("no events on sqlite");
        assert!(err.to_string().contains("unknown parameter `sent_events`"), "{err}");
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_parameters_and_paths_are_checked() {
        let err = connect("sqlite:///tmp/x.db?lease=5").await.expect_err("bad parameter");
        assert!(err.to_string().contains("unknown parameter `lease`"), "{err}");
        let err = connect("sqlite:///tmp/x.db?lease_ms=soon").await.expect_err("bad value");
        assert!(err.to_string().contains("expected milliseconds above 0"), "{err}");
        let err = connect("sqlite:///proc/definitely/not/here.db").await.expect_err("cannot open");
        assert!(matches!(err, ConnectError::Open { .. }), "{err}");
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn an_unreachable_redis_is_an_open_error_that_hides_the_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let err = connect(&format!("redis://127.0.0.1:{port}/0")).await.expect_err("nobody listens");
        assert!(err.to_string().contains("is redis-server running there?"), "{err}");
        let err = connect("redis://:not-the-password@127.0.0.1:1/0").await.expect_err("nobody listens");
        assert!(!err.to_string().contains("not-the-password"), "a password is never shown: {err}");
    }

    #[cfg(not(feature = "redis"))]
    #[tokio::test]
    async fn a_broker_not_compiled_in_names_its_feature_and_hides_the_password() {
        let err = connect("redis://:not-the-password@127.0.0.1:1/0").await.expect_err("not compiled in");
        assert!(matches!(err, ConnectError::NotCompiledIn { feature: "redis", .. }), "{err}");
        assert!(!err.to_string().contains("not-the-password"), "a password is never shown: {err}");
    }
}
