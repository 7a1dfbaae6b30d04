//! Worker processes and scratch databases for `demo` and `bench`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use artel::{Connection, connect};

/// A database file in the temp directory, removed (with its WAL files) on drop.
#[derive(Debug)]
pub(crate) struct TempDb(PathBuf);

impl TempDb {
    pub(crate) fn new(purpose: &str) -> Self {
        Self(std::env::temp_dir().join(format!("artel-{purpose}-{}-{}.db", std::process::id(), uuid::Uuid::new_v4())))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        artel::sqlite::remove_database(&self.0);
    }
}

/// Where `demo` and `bench` send their tasks: a scratch SQLite file (removed when
/// dropped) unless the user named a broker with `--broker`; on Redis under a unique key
/// prefix and on PostgreSQL in a schema of their own, deleted by [`Namespace::remove`].
pub(crate) enum Namespace {
    Scratch(TempDb),
    Sqlite(String),
    Redis { url: String, connection: Option<Box<Connection>> },
    Postgres { url: String, connection: Option<Box<Connection>> },
}

impl Namespace {
    pub(crate) fn new(purpose: &str, broker: Option<&str>) -> anyhow::Result<Self> {
        match broker {
            None => Ok(Self::Scratch(TempDb::new(purpose))),
            Some(url) if url.starts_with("sqlite://") => Ok(Self::Sqlite(url.to_owned())),
            Some(url)
                if ["redis://", "rediss://", "redis+sentinel://", "redis+cluster://"]
                    .iter()
                    .any(|s| url.starts_with(s)) =>
            {
                let sep = if url.contains('?') { '&' } else { '?' };
                let url = format!("{url}{sep}prefix=artel-{purpose}-{}", uuid::Uuid::new_v4());
                Ok(Self::Redis { url, connection: None })
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                let purpose = purpose.replace('-', "_");
                let url = format!("{url}{sep}schema=artel_{purpose}_{}", uuid::Uuid::new_v4().simple());
                Ok(Self::Postgres { url, connection: None })
            }
            Some(url) => anyhow::bail!(
                "`artel {purpose}` runs on sqlite://, redis:// or postgres:// (it counts unfinished messages), not {}",
                artel::core::redact_url(url)
            ),
        }
    }

    /// What to tell the user was measured, password hidden.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Scratch(db) => format!("sqlite://{} (scratch file)", db.path().display()),
            Self::Sqlite(url) | Self::Redis { url, .. } | Self::Postgres { url, .. } => artel::core::redact_url(url),
        }
    }

    /// The URL with `extra` query parameters (e.g. `poll_ms=1`).
    pub(crate) fn url(&self, extra: &str) -> String {
        let base = match self {
            Self::Scratch(db) => format!("sqlite://{}", db.path().display()),
            Self::Sqlite(url) | Self::Redis { url, .. } | Self::Postgres { url, .. } => url.clone(),
        };
        match (extra.is_empty(), base.contains('?')) {
            (true, _) => base,
            (false, true) => format!("{base}&{extra}"),
            (false, false) => format!("{base}?{extra}"),
        }
    }

    pub(crate) async fn open(&mut self) -> anyhow::Result<Connection> {
        let connection = connect(&self.url("")).await?;
        if let Self::Redis { connection: keep, .. } | Self::Postgres { connection: keep, .. } = self {
            *keep = Some(Box::new(connection.clone()));
        }
        Ok(connection)
    }

    pub(crate) async fn remove(self) {
        match self {
            Self::Redis { connection: Some(c), .. } => {
                if let Some(redis) = c.redis {
                    let _ = redis.delete_namespace().await;
                }
            }
            Self::Postgres { connection: Some(c), .. } => {
                if let Some(postgres) = c.postgres {
                    let _ = postgres.delete_namespace().await;
                }
            }
            _ => {}
        }
    }
}

/// An `artel worker` child process of this same binary; killed if dropped unfinished.
#[derive(Debug)]
pub(crate) struct Worker(Option<Child>);

impl Worker {
    pub(crate) fn spawn(url: &str, args: &[&str]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this executable to start a worker")?;
        let child = Command::new(exe)
            .args(["--broker", url, "worker"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting a worker process")?;
        Ok(Self(Some(child)))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Waits for a `--burst` worker to exit by itself.
    pub(crate) fn finish(mut self, patience: Duration) -> anyhow::Result<()> {
        let Some(mut child) = self.0.take() else { return Ok(()) };
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("the worker process exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("the worker process did not exit within {patience:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
