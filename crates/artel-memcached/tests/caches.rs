//! The cache suite (artel-broker-tests) on memcached, and a memcached restart: calls while
//! it is down degrade to computing, and the cache reconnects once it is back.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use artel_broker_tests::caches;
use artel_cache::{Cache, CacheStore};
use artel_memcached::MemcachedCache;

fn address() -> String {
    std::env::var("ARTEL_MEMCACHED").unwrap_or_else(|_| "127.0.0.1:11211".to_owned())
}

/// A store under a prefix of its own; the suite's keys are deleted when it is dropped
/// (memcached cannot list keys), on a connection of the cleanup's own (the test's
/// runtime no longer runs then).
struct Scratch {
    store: MemcachedCache,
    prefix: String,
}

impl Scratch {
    fn cache(&self) -> Cache {
        Cache::new(self.store.clone())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let Ok(store) = MemcachedCache::connect(&address(), &prefix).await else { return };
                for key in caches::KEYS {
                    let _ = store.delete(key).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

async fn scratch() -> Option<Scratch> {
    let prefix = format!("artel-test-{}", uuid::Uuid::new_v4().simple());
    match MemcachedCache::connect(&address(), &prefix).await {
        Ok(store) => Some(Scratch { store, prefix }),
        Err(error) if std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("memcached is required (ARTEL_REQUIRE_SERVICES=1) but unreachable: {error}")
        }
        Err(error) => {
            eprintln!("skipped: no memcached at {} ({error})", address());
            None
        }
    }
}

// memcached counts whole seconds; it cannot clear a prefix (the suite sees it say so).
artel_broker_tests::cache_suite!(
    scratch().await.map(|scratch| (scratch.store.clone(), scratch)),
    ttl = Duration::from_secs(1)
);

#[tokio::test]
async fn a_key_memcached_cannot_hold_is_refused_by_name_and_computed() {
    let Some(scratch) = scratch().await else { return };
    let refused = scratch.store.get("two words").await.expect_err("refused");
    assert!(refused.to_string().contains("no spaces"), "{refused}");
    let value = scratch.cache().get_or_compute("two words", None, || async { Ok::<_, ()>(1) }).await;
    assert_eq!(value, Ok(1), "a cache that cannot hold it computes");
}

/// A memcached of the test's own on a free port, stopped when dropped.
struct Server(Child);

impl Server {
    fn start(port: u16) -> Self {
        let mut command = Command::new("memcached");
        command.args(["-l", "127.0.0.1", "-p", &port.to_string(), "-m", "16"]);
        // memcached refuses to run as root unless told which user to be.
        if std::env::var("USER").as_deref() == Ok("root") || is_root() {
            command.args(["-u", "root"]);
        }
        let child =
            command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("memcached (scripts/test installs it)");
        let server = Self(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "memcached on {port} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0"))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn after_a_memcached_restart_the_cache_reconnects_and_meanwhile_computes() {
    if scratch().await.is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let server = Server::start(port);
    let store = MemcachedCache::connect(&format!("127.0.0.1:{port}"), "restart").await.expect("connect");
    let cache = Cache::new(store);
    assert!(cache.set("k", &1, None).await);
    drop(server);
    assert_eq!(cache.get::<u32>("k").await, None, "down: a miss");
    assert_eq!(cache.get_or_compute("k", None, || async { Ok::<_, ()>(2) }).await, Ok(2), "down: computed");
    let _server = Server::start(port);
    assert!(cache.set("k", &3, None).await, "reconnected");
    assert_eq!(cache.get::<u32>("k").await, Some(3));
}
