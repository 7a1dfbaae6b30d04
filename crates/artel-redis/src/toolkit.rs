//! Pieces any Redis layout needs, shared with `artel-celery` (Celery's layout): error
//! kinds, opening a connection, waiting for a published result, the revocation log.

use std::sync::LazyLock;
use std::time::Duration;

use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, Revocation, TaskResult};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use crate::conn::Conn;

use artel_core::TlsFiles;

use crate::sentinel::{Follower, SentinelSet};

/// Maps redis-rs errors to kinds the runtime can act on. Whatever redis-rs says is worth
/// retrying (a dropped connection, a server still LOADING its data after a restart,
/// TRYAGAIN, MASTERDOWN...) is transient, so workers back off instead of stopping.
pub fn redis_error(what: &str, e: redis::RedisError) -> BrokerError {
    use redis::RetryMethod;
    let kind = if e.is_timeout() {
        BrokerErrorKind::Timeout
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.code() == Some("READONLY")
    {
        // READONLY: a former master, demoted by a failover this connection has not
        // followed yet.
        BrokerErrorKind::Connection
    } else {
        match e.retry_method() {
            RetryMethod::NoRetry => BrokerErrorKind::Other,
            _ => BrokerErrorKind::Connection,
        }
    };
    // Redis names the command, key or channel refused; say where the rules are.
    let what = match e.code() {
        Some("NOPERM") => {
            format!("{what} (the Redis ACL user lacks a permission; docs/redis-acl.md lists the rules artel needs)")
        }
        _ => what.to_owned(),
    };
    BrokerError::new(kind, what).with_source(e)
}

/// What [`open`] opened.
#[derive(Debug)]
pub struct Opened {
    /// For dedicated connections (blocking reads, subscriptions).
    pub client: redis::Client,
    /// Multiplexed and reconnecting, for everything else.
    pub conn: ConnectionManager,
    /// With Sentinel: what keeps every connection on the current master; keep it as long
    /// as the connections.
    pub follower: Option<Follower>,
}

/// Opens `url` (`redis://host:port/db`, or `rediss://` with `tls`). With `sentinel`, the
/// host in `url` is ignored: connections go to the master the sentinels name, and follow
/// it through failovers (see [`crate::sentinel`]).
pub async fn open(url: &str, tls: &TlsFiles, sentinel: Option<&SentinelSet>) -> BrokerResult<Opened> {
    let shown = artel_core::redact_url(url);
    let failed = |e: redis::RedisError| {
        let hint = match e.kind() {
            redis::ErrorKind::AuthenticationFailed => {
                " (check the password in the URL, redis://:PASSWORD@HOST, or the ACL user, redis://USER:PASSWORD@HOST)"
            }
            _ if crate::tls::hint(&e).is_some() => crate::tls::hint(&e).unwrap_or_default(),
            _ if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() => " (is redis-server running there?)",
            _ => "",
        };
        redis_error(&format!("connecting to Redis at {shown}{hint}"), e)
    };
    let (client, follower) = match sentinel {
        None => (crate::tls::client(url, &shown, tls)?, None),
        Some(set) => {
            if url.starts_with("rediss://") || !tls.is_empty() {
                return Err(BrokerError::new(
                    BrokerErrorKind::Other,
                    "TLS to a Sentinel-managed master is not supported yet: use redis+sentinel:// without certificate files",
                ));
            }
            let (address, follower) = crate::sentinel::follow(set.clone()).await?;
            let (host, port) = address.rsplit_once(':').unwrap_or((address.as_str(), "0"));
            let port = port.parse().unwrap_or_default();
            let info = redis::IntoConnectionInfo::into_connection_info(url)
                .map_err(failed)?
                .set_addr(redis::ConnectionAddr::Tcp(host.to_owned(), port));
            (redis::Client::open(info).map_err(failed)?, Some(follower))
        }
    };
    let config = manager_config().set_response_timeout(Some(crate::conn::PATIENCE));
    let conn = ConnectionManager::new_with_config(client.clone(), config).await.map_err(failed)?;
    Ok(Opened { client, conn, follower })
}

/// How artel's reconnecting connections to one server (re)connect: a few quick retries,
/// so a wrong address is reported in about a second, not after the default backoff;
/// later drops are reconnected on the next command.
pub(crate) fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(Duration::from_secs(2)))
}

/// Every key matching `pattern`, on every master (SCAN in pages: never blocks the server
/// like KEYS).
pub async fn scan(conn: &mut Conn, pattern: &str) -> BrokerResult<Vec<String>> {
    conn.scan(pattern).await.map_err(|e| redis_error("listing keys", e))
}

/// Deletes every key matching `pattern`; returns how many.
pub async fn delete_matching(conn: &mut Conn, pattern: &str) -> BrokerResult<u64> {
    let keys = scan(conn, pattern).await?;
    let mut deleted = 0;
    for chunk in keys.chunks(1000) {
        let n: u64 =
            redis::cmd("UNLINK").arg(chunk).query_async(conn).await.map_err(|e| redis_error("deleting keys", e))?;
        deleted += n;
    }
    Ok(deleted)
}

/// A subscription connection on the first of `servers` that answers.
pub async fn subscribe(servers: &[redis::Client]) -> redis::RedisResult<redis::aio::PubSub> {
    let mut last = redis::RedisError::from((redis::ErrorKind::Client, "no server to subscribe on"));
    for server in servers {
        match server.get_async_pubsub().await {
            Ok(pubsub) => return Ok(pubsub),
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// Waits until `read` finds task `task_id`'s result ready, or `timeout` passes. Results
/// are announced on the channel named like their `key`; subscribing before each read
/// means a result stored in between is seen by the read, one stored after by the channel.
pub async fn wait_published<F, Fut>(
    servers: &[redis::Client],
    key: &str,
    task_id: &str,
    timeout: Duration,
    read: F,
) -> BrokerResult<TaskResult>
where
    F: Fn() -> Fut,
    Fut: Future<Output = BrokerResult<Option<TaskResult>>>,
{
    let mut pubsub = subscribe(servers).await.map_err(|e| redis_error("opening a result subscription", e))?;
    pubsub.subscribe(key).await.map_err(|e| redis_error("subscribing to a result", e))?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut messages = pubsub.on_message();
    loop {
        if let Some(result) = read().await?.filter(|r| r.status.is_ready()) {
            return Ok(result);
        }
        let next = std::future::poll_fn(|cx| futures_util::Stream::poll_next(std::pin::Pin::new(&mut messages), cx));
        if tokio::time::timeout_at(deadline, next).await.is_err() {
            return Err(BrokerError::new(
                BrokerErrorKind::Timeout,
                format!("task {task_id} was not ready within {timeout:?}"),
            ));
        }
    }
}

/// The results stored under `keys` (of tasks `task_ids`), with one MGET.
pub async fn get_many(conn: &mut Conn, keys: &[String], task_ids: &[String]) -> BrokerResult<Vec<Option<TaskResult>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let stored: Vec<Option<Vec<u8>>> =
        redis::cmd("MGET").arg(keys).query_async(conn).await.map_err(|e| redis_error("reading results", e))?;
    stored
        .into_iter()
        .zip(task_ids)
        .map(|(json, id)| {
            json.map(|json| {
                serde_json::from_slice(&json).map_err(|e| {
                    BrokerError::new(
                        BrokerErrorKind::Corrupt,
                        format!("the stored result of task {id} is not valid JSON"),
                    )
                    .with_source(e)
                })
            })
            .transpose()
        })
        .collect()
}

/// The Lua helper `write_result(key, json, ttl_ms)`: a guarded result write announced
/// on the key's channel; prepend it to a script that stores results.
pub const RESULT_LUA: &str = include_str!("../lua/lib/result.lua");

/// A TTL as the milliseconds the Lua scripts take: 0 keeps forever, else at least 1.
pub fn ttl_ms(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1))
}

static STORE_RESULT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(concat!(include_str!("../lua/lib/result.lua"), include_str!("../lua/store_result.lua")))
});

/// Stores `result` under `key` unless a final result is there (see `RESULT_LUA`), with
/// `ttl`; returns whether it was written.
pub async fn store_result(
    conn: &mut Conn,
    key: &str,
    result: &TaskResult,
    ttl: Option<Duration>,
) -> BrokerResult<bool> {
    let json = serde_json::to_vec(result)
        .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a result").with_source(e))?;
    let written: i64 = STORE_RESULT
        .key(key)
        .arg(json)
        .arg(ttl_ms(ttl))
        .invoke_async(conn)
        .await
        .map_err(|e| redis_error("storing a result", e))?;
    Ok(written == 1)
}

/// Revocations kept in a log; older ones are dropped (workers read it every poll).
const REVOCATIONS_KEPT: u64 = 100_000;
/// Revocations one poll reads at most.
const REVOCATIONS_PER_READ: isize = 10_000;

static REVOKE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(include_str!("../lua/revoke.lua")));

/// A revocation log: a ZSET of revocation JSON scored by a sequence counter.
#[derive(Debug, Clone)]
pub struct RevocationLog {
    /// The ZSET.
    pub log: String,
    /// The counter.
    pub seq: String,
}

impl RevocationLog {
    /// Appends `revocation`.
    pub async fn record(&self, conn: &mut Conn, revocation: &Revocation) -> BrokerResult<()> {
        let json = serde_json::to_vec(revocation)
            .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a revocation").with_source(e))?;
        let _: u64 = REVOKE
            .key(&self.log)
            .key(&self.seq)
            .arg(json)
            .arg(REVOCATIONS_KEPT)
            .invoke_async(conn)
            .await
            .map_err(|e| redis_error("recording a revocation", e))?;
        Ok(())
    }

    /// The unexpired revocations after `cursor`, and the cursor to read from next.
    pub async fn read(&self, conn: &mut Conn, cursor: u64) -> BrokerResult<(Vec<Revocation>, u64)> {
        let rows: Vec<(Vec<u8>, u64)> = conn
            .zrangebyscore_limit_withscores(&self.log, format!("({cursor}"), "+inf", 0, REVOCATIONS_PER_READ)
            .await
            .map_err(|e| redis_error("reading revocations", e))?;
        let next = rows.last().map_or(cursor, |(_, seq)| *seq);
        let now = chrono::Utc::now();
        let mut revocations = Vec::with_capacity(rows.len());
        for (json, _) in rows {
            let revocation: Revocation = serde_json::from_slice(&json).map_err(|e| {
                BrokerError::new(BrokerErrorKind::Corrupt, "the revocation log holds invalid JSON").with_source(e)
            })?;
            if revocation.expires_at > now {
                revocations.push(revocation);
            }
        }
        Ok((revocations, next))
    }
}

/// Workers' heartbeats and stats in one hash (`artel stats`), for either Redis layout.
#[derive(Debug, Clone)]
pub struct WorkerReports {
    /// The hash: worker name -> `{"heartbeat_at_ms", "stats"}`.
    pub key: String,
}

/// Fields of the reports hash that hold stop requests, not reports.
const STOP_FIELD: &str = "!stop:";

impl WorkerReports {
    /// Records `name`'s heartbeat at `now_ms` with its stats; true when a stop was asked
    /// of it (the request is taken).
    pub async fn report(
        &self,
        conn: &mut Conn,
        name: &str,
        stats: &serde_json::Value,
        now_ms: i64,
    ) -> BrokerResult<bool> {
        let report = serde_json::json!({"heartbeat_at_ms": now_ms, "stats": stats}).to_string();
        let asked: i64 = redis::Script::new(include_str!("../lua/worker_report.lua"))
            .key(&self.key)
            .arg(name)
            .arg(report)
            .invoke_async(conn)
            .await
            .map_err(|e| redis_error("recording a worker heartbeat", e))?;
        Ok(asked > 0)
    }

    /// Asks `name` to stop at its next report; false when it does not report here.
    pub async fn request_stop(&self, conn: &mut Conn, name: &str) -> BrokerResult<bool> {
        let recorded: i64 = redis::Script::new(include_str!("../lua/worker_stop.lua"))
            .key(&self.key)
            .arg(name)
            .invoke_async(conn)
            .await
            .map_err(|e| redis_error("asking a worker to stop", e))?;
        Ok(recorded > 0)
    }

    /// Forgets a worker that stopped cleanly.
    pub async fn gone(&self, conn: &mut Conn, name: &str) -> BrokerResult<()> {
        conn.hdel(&self.key, &[name.to_owned(), format!("{STOP_FIELD}{name}")])
            .await
            .map_err(|e| redis_error("removing a worker", e))
    }

    /// Every report, by worker name.
    pub async fn list(&self, conn: &mut Conn) -> BrokerResult<Vec<artel_core::WorkerReport>> {
        let all: Vec<(String, String)> =
            conn.hgetall(&self.key).await.map_err(|e| redis_error("listing workers", e))?;
        let mut reports: Vec<artel_core::WorkerReport> = all
            .into_iter()
            .filter(|(name, _)| !name.starts_with(STOP_FIELD))
            .map(|(name, json)| {
                let report: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
                artel_core::WorkerReport {
                    name,
                    heartbeat_at_ms: report["heartbeat_at_ms"].as_i64().unwrap_or(0),
                    stats: report["stats"].clone(),
                }
            })
            .collect();
        reports.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(reports)
    }
}
