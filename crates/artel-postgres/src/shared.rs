//! What a broker's clones share: the pool, settings, clock and the wake-ups the
//! listener hands out. A leaf: the broker, its lease store and result backend build on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, Clock, StoreSignal};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Executor, PgPool};
use tokio::sync::{Notify, broadcast, watch};

use crate::completer::Completions;

/// The schema's migrations, in order; each runs once, in a transaction.
const MIGRATIONS: [(i32, &str); 9] = [
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_workers.sql")),
    (3, include_str!("../migrations/0003_locks.sql")),
    (4, include_str!("../migrations/0004_failed.sql")),
    (5, include_str!("../migrations/0005_history.sql")),
    (6, include_str!("../migrations/0006_lighter_writes.sql")),
    (7, include_str!("../migrations/0007_control_board.sql")),
    (8, include_str!("../migrations/0008_cache_and_rates.sql")),
    (9, include_str!("../migrations/0009_fair_groups.sql")),
];

/// Settings of a [`crate::PostgresBroker`].
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// The schema artel's tables live in (created on first use).
    pub schema: String,
    /// How long a claimed message stays hidden without a heartbeat.
    pub lease: Duration,
    /// How often an idle consumer looks for messages when no notification came (a lost
    /// listener, or delayed messages coming due).
    pub poll_interval: Duration,
    /// Connections in each of the two pools.
    pub pool_size: u32,
    /// How many tasks that failed for good are kept per queue for `artel failed`.
    pub failed_kept: u32,
    /// How many task records the task history keeps; the least recently updated go first.
    pub history_kept: u32,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            schema: "artel".to_owned(),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            pool_size: 10,
            failed_kept: artel_core::FAILED_KEPT,
            history_kept: artel_core::HISTORY_KEPT,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    /// Publishes, results stored apart, admin: committed durably.
    pub(crate) pool: PgPool,
    /// Claims, heartbeats, acks and completions: committed without waiting for the WAL
    /// flush. A crash can undo the last of them, and that only runs a task again: a
    /// completion's result and ack are one statement, so they are undone together, and
    /// an undone claim or ack leaves the message to be delivered again. Nothing
    /// acknowledged to a producer is on this pool.
    pub(crate) settle: PgPool,
    pub(crate) config: PostgresConfig,
    pub(crate) clock: Arc<dyn Clock>,
    /// The NOTIFY channel of publishes (ready results have one of their own).
    pub(crate) published_channel: String,
    /// Bumped at each publish notification: idle consumers wake on it.
    pub(crate) published: watch::Sender<u64>,
    /// Signalled at each ready-result notification: result waiters wake on it.
    pub(crate) stored: Arc<StoreSignal>,
    /// The tasks each ready-result notification names, for watches.
    pub(crate) announced: broadcast::Sender<Announcement>,
    /// Ready results stored here since the last announcement.
    unannounced: Arc<Notify>,
    /// Publishes committed here without a NOTIFY since the last announcement.
    unpublished: Arc<Notify>,
    /// When a publish last carried its own NOTIFY (microseconds since `opened`).
    publish_notified: AtomicU64,
    /// Publishes of this process not yet committed.
    publishing: AtomicUsize,
    opened: std::time::Instant,
    /// Where consumers' completions go to be written in batches.
    pub(crate) completions: Completions,
    listener: tokio::task::JoinHandle<()>,
    announcer: tokio::task::JoinHandle<()>,
    publish_announcer: tokio::task::JoinHandle<()>,
    completer: tokio::task::JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.listener.abort();
        self.announcer.abort();
        self.publish_announcer.abort();
        self.completer.abort();
    }
}

/// The task ids one ready-result notification names; empty when it does not say (a
/// watch then reads every task it watches).
pub(crate) type Announcement = Arc<[String]>;

/// Notifications a watch may fall behind by before it reads every task it watches.
const ANNOUNCEMENTS_KEPT: usize = 1024;

/// At most one NOTIFY per channel and process per this interval (a completion batch's
/// own aside): every NOTIFY serialises its transaction's commit on a server-wide lock, so
/// one per publish or result would cap a busy server at a few thousand commits a second.
const ANNOUNCE_EVERY: Duration = Duration::from_millis(2);

impl Shared {
    pub(crate) async fn open(url: &str, config: PostgresConfig, clock: Arc<dyn Clock>) -> BrokerResult<Self> {
        let shown = artel_core::redact_url(url);
        let schema = &config.schema;
        if schema.is_empty() || !schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(BrokerError::new(
                BrokerErrorKind::Other,
                format!("schema {schema:?}: use letters, digits and underscores (?schema=artel)"),
            ));
        }
        let options: PgConnectOptions =
            url.parse().map_err(|e| pg_error(&format!("reading the PostgreSQL URL {shown}"), e))?;
        let options = with_tls_files(options.options([("search_path", schema.as_str())]), url);
        let connecting = |e: sqlx::Error| {
            let hint = artel_core::tls_hint(&format!("{e:?} {e}"))
                .map(|hint| hint.replace("?ca=PATH", "?sslrootcert=PATH"))
                .unwrap_or_else(|| " (is it running there?)".to_owned());
            pg_error(&format!("connecting to PostgreSQL at {shown}{hint}"), e)
        };
        // sqlx pings a connection when it goes back to the pool (dropping broken ones) and,
        // unless told not to, again when it is taken: a second round trip before every
        // statement, on the task's path. A connection broken while idle fails its next
        // statement instead, which every caller retries like any lost connection.
        let pools = PgPoolOptions::new()
            .max_connections(config.pool_size)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false);
        let pool = pools.clone().connect_with(options.clone()).await.map_err(connecting)?;
        let settle =
            pools.connect_with(options.clone().options([("synchronous_commit", "off")])).await.map_err(connecting)?;
        migrate(&pool, schema).await?;
        let published_channel = format!("artel_{schema}_published");
        let results_channel = format!("artel_{schema}_results");
        let published = watch::Sender::new(0);
        let stored = Arc::new(StoreSignal::default());
        let (announced, _) = broadcast::channel(ANNOUNCEMENTS_KEPT);
        let listener = Listener {
            options,
            channels: [published_channel.clone(), results_channel.clone()],
            published: published.clone(),
            stored: stored.clone(),
            announced: announced.clone(),
        };
        let listener = tokio::spawn(listener.run());
        let unannounced = Arc::new(Notify::new());
        let announcer = tokio::spawn(announce(settle.clone(), results_channel.clone(), unannounced.clone()));
        let unpublished = Arc::new(Notify::new());
        let publish_announcer = tokio::spawn(announce(pool.clone(), published_channel.clone(), unpublished.clone()));
        let (completions, incoming) = tokio::sync::mpsc::unbounded_channel();
        let completer = crate::completer::Completer {
            pool: settle.clone(),
            channel: results_channel.clone(),
            clock: clock.clone(),
            stored: stored.clone(),
            vacuum: autovacuum_off(&pool).await,
        };
        let completer = tokio::spawn(completer.run(incoming));
        Ok(Self {
            pool,
            settle,
            config,
            clock,
            published_channel,
            published,
            stored,
            announced,
            unannounced,
            unpublished,
            publish_notified: AtomicU64::new(0),
            publishing: AtomicUsize::new(0),
            opened: std::time::Instant::now(),
            completions,
            listener,
            announcer,
            publish_announcer,
            completer,
        })
    }

    /// Has a ready result (committed) announced to every process's waiters: this
    /// process's at once, others' with the next NOTIFY (at once when none went out in
    /// the last [`ANNOUNCE_EVERY`]).
    pub(crate) fn announce_result(&self) {
        self.stored.stored();
        self.unannounced.notify_one();
    }

    /// A publish starting: whether it carries its own NOTIFY, and the guard that counts it
    /// in flight until dropped. It does when no other publish of this process is in flight
    /// (one at a time, each wakes its consumers at once) or none carried one in the last
    /// [`ANNOUNCE_EVERY`]; else [`Shared::announce_publish`] follows its commit, shared
    /// with the others (each NOTIFY serialises its commit on a server-wide lock).
    pub(crate) fn start_publish(&self) -> (bool, impl Drop + '_) {
        let alone = self.publishing.fetch_add(1, Ordering::AcqRel) == 0;
        let now = u64::try_from(self.opened.elapsed().as_micros()).unwrap_or(u64::MAX);
        let last = self.publish_notified.load(Ordering::Acquire);
        let every = u64::try_from(ANNOUNCE_EVERY.as_micros()).unwrap_or(u64::MAX);
        let due = last == 0 || now.saturating_sub(last) >= every;
        let notify = (alone || due)
            && self.publish_notified.compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Acquire).is_ok();
        (notify, InFlight(&self.publishing))
    }

    /// Has committed publishes announced to every process's consumers with the next NOTIFY.
    pub(crate) fn announce_publish(&self) {
        self.unpublished.notify_one();
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    pub(crate) fn now_us(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }
}

/// Counts a publish in flight until dropped (also when its future is).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The `ARTEL_TLS_CA_FILE`, `ARTEL_TLS_CERT_FILE` and `ARTEL_TLS_KEY_FILE` files, where
/// the URL names none of its own (`sslrootcert`, `sslcert`, `sslkey` win).
fn with_tls_files(mut options: PgConnectOptions, url: &str) -> PgConnectOptions {
    let file = |variable: &str, parameter: &str| {
        std::env::var_os(variable).filter(|v| !v.is_empty() && !url.contains(&format!("{parameter}=")))
    };
    if let Some(ca) = file("ARTEL_TLS_CA_FILE", "sslrootcert") {
        options = options.ssl_root_cert(std::path::PathBuf::from(ca));
    }
    if let Some(cert) = file("ARTEL_TLS_CERT_FILE", "sslcert") {
        options = options.ssl_client_cert(std::path::PathBuf::from(cert));
    }
    if let Some(key) = file("ARTEL_TLS_KEY_FILE", "sslkey") {
        options = options.ssl_client_key(std::path::PathBuf::from(key));
    }
    options
}

/// Whether the server's autovacuum is off (then artel vacuums its hot tables itself), said
/// once per process with the fix.
async fn autovacuum_off(pool: &PgPool) -> bool {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let setting: Result<String, _> =
        sqlx::query_scalar(include_str!("../queries/autovacuum.sql")).fetch_one(pool).await;
    let off = setting.is_ok_and(|on| on == "off");
    if off {
        WARNED.call_once(|| {
            tracing::warn!(
                "autovacuum is off on this PostgreSQL server: artel vacuums its queue tables itself every 50,000 \
                 completions; turn it on (autovacuum = on in postgresql.conf) so every table is kept"
            );
        });
    }
    off
}

/// Creates the schema and applies the migrations it lacks, under an advisory lock so
/// processes starting together apply each once.
async fn migrate(pool: &PgPool, schema: &str) -> BrokerResult<()> {
    let migrating = |e| pg_error(&format!("migrating schema {schema}"), e);
    let mut tx = pool.begin().await.map_err(migrating)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("artel-migrate-{schema}"))
        .execute(&mut *tx)
        .await
        .map_err(migrating)?;
    tx.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str()).await.map_err(migrating)?;
    tx.execute(
        format!("CREATE TABLE IF NOT EXISTS {schema}.artel_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            .as_str(),
    )
    .await
    .map_err(migrating)?;
    let done: Option<i32> = sqlx::query_scalar(&format!("SELECT max(version) FROM {schema}.artel_migrations"))
        .fetch_one(&mut *tx)
        .await
        .map_err(migrating)?;
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > done.unwrap_or(0)) {
        tx.execute(format!("SET LOCAL search_path TO {schema}").as_str()).await.map_err(migrating)?;
        tx.execute(*sql).await.map_err(migrating)?;
        sqlx::query(&format!("INSERT INTO {schema}.artel_migrations (version) VALUES ($1)"))
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(migrating)?;
        tracing::info!(schema, version, "applied a migration");
    }
    tx.commit().await.map_err(migrating)
}

/// Sends a NOTIFY on `channel` as soon as `pending` is signalled (ready results stored,
/// or publishes committed without one), then at most one per [`ANNOUNCE_EVERY`] for
/// those meanwhile; a failed one is followed by the next (waiters and consumers also poll).
async fn announce(pool: PgPool, channel: String, pending: Arc<Notify>) {
    loop {
        pending.notified().await;
        let sent = sqlx::query(include_str!("../queries/notify.sql")).bind(&channel).bind("").execute(&pool).await;
        if let Err(error) = sent {
            tracing::debug!(%error, %channel, "could not announce; waiters and consumers will poll");
        }
        // What happened meanwhile goes out together with the next one.
        tokio::time::sleep(ANNOUNCE_EVERY).await;
    }
}

/// Keeps one LISTEN connection, reconnecting with backoff, and turns notifications into
/// wake-ups; after a reconnect everyone is woken once, for what was missed meanwhile.
struct Listener {
    options: PgConnectOptions,
    /// The publish channel, then the results channel.
    channels: [String; 2],
    published: watch::Sender<u64>,
    stored: Arc<StoreSignal>,
    announced: broadcast::Sender<Announcement>,
}

impl Listener {
    async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let connected = async {
                let pool = PgPoolOptions::new().max_connections(1).connect_lazy_with(self.options.clone());
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen_all(self.channels.iter().map(String::as_str)).await?;
                Ok::<_, sqlx::Error>(listener)
            }
            .await;
            let mut listener = match connected {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "cannot LISTEN for publishes and results; polling meanwhile");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            self.published.send_modify(|n| *n += 1);
            self.results_stored("");
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) if notification.channel() == self.channels[0] => {
                        self.published.send_modify(|n| *n += 1);
                    }
                    Ok(Some(notification)) => self.results_stored(notification.payload()),
                    // The connection dropped: reconnect, and wake everyone for what was missed.
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }

    /// Wakes result waiters, and tells watches which tasks' results were stored (`ids`,
    /// one per line; empty: unknown).
    fn results_stored(&self, ids: &str) {
        self.stored.stored();
        let _ = self.announced.send(ids.lines().map(str::to_owned).collect());
    }
}

/// Maps sqlx errors to kinds the runtime acts on: a lost connection, a server shutting
/// down or restarting, a serialization failure or deadlock are transient.
pub(crate) fn pg_error(what: &str, e: sqlx::Error) -> BrokerError {
    let kind = match &e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            BrokerErrorKind::Connection
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) if code.starts_with("08") || code.starts_with("57P") => BrokerErrorKind::Connection,
            Some("40001" | "40P01") => BrokerErrorKind::Connection,
            Some("53100") => BrokerErrorKind::StorageFull,
            _ => BrokerErrorKind::Other,
        },
        _ => BrokerErrorKind::Other,
    };
    BrokerError::new(kind, what.to_owned()).with_source(e)
}
