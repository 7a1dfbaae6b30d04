//! A native broker of a test's own: a SQLite file in a scratch directory, Redis keys
//! under a unique prefix, a PostgreSQL schema; each removed when its guard drops. A
//! server that is absent skips the test, unless `ARTEL_REQUIRE_SERVICES=1` (scripts/test)
//! makes that a failure.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A broker URL and what to remove at the end.
pub struct Scratch {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    RedisKeys(String),
    Schema { server: String, schema: String },
}

/// A SQLite file in a scratch directory; `query` (`poll_ms=20`, ...) ends the URL.
pub fn sqlite(query: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("artel-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    Scratch { url: format!("sqlite://{}/artel.db?{query}", dir.display()), cleanup: Cleanup::Dir(dir) }
}

/// Keys under a unique prefix on the test Redis.
pub fn redis(query: &str) -> Option<Scratch> {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4());
    let scratch =
        Scratch { url: format!("{}?prefix={prefix}&{query}", super::redis_url()), cleanup: Cleanup::RedisKeys(prefix) };
    scratch.reachable("Redis")
}

/// A schema of its own on the test PostgreSQL.
pub fn postgres(query: &str) -> Option<Scratch> {
    let server =
        std::env::var("ARTEL_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("artel_test_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{server}?schema={schema}&{query}");
    Scratch { url, cleanup: Cleanup::Schema { server, schema } }.reachable("PostgreSQL")
}

impl Scratch {
    fn reachable(self, server: &str) -> Option<Self> {
        if super::artel(&self.url, &["queues"]).0 == 0 {
            return Some(self);
        }
        assert!(std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() != Ok("1"), "{server} is required");
        eprintln!("skipped: no {server}");
        None
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::RedisKeys(prefix) => {
                let url = super::redis_url();
                let script =
                    format!("redis-cli -u '{url}' --scan --pattern '{prefix}:*' | xargs -r redis-cli -u '{url}' del");
                let _ = Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).status();
            }
            Cleanup::Schema { server, schema } => {
                let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                let _ = Command::new("psql").args([server.as_str(), "-qc", &drop]).stdout(Stdio::null()).status();
            }
        }
    }
}
