//! A Redis restart in the middle of a run loses no queued task and no stored result
//! (with persistence on): the worker rides it out and every task ends SUCCESS. A cache
//! on the server reads as a miss while it is down, and reconnects once it is back.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use artel_cache::Cache;
use artel_core::{
    Arguments, BoxFuture, Broker, Clock, Registry, ResultBackend, Signature, State, SystemClock, Task, TaskError,
};
use artel_pool::Pool;
use artel_redis::{RedisBroker, RedisConfig};
use artel_runtime::{Stop, Worker, WorkerConfig};

/// A private redis-server with an append-only file, on its own port and directory.
struct Server {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start(port: u16, dir: PathBuf) -> Option<Self> {
        std::fs::create_dir_all(&dir).ok()?;
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--save", "", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let server = Self { port, dir, child: Some(child) };
        server.wait_ready().then_some(server)
    }

    fn wait_ready(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(mut self) -> Option<Self> {
        self.stop();
        // The new server keeps the directory: dropping `self` must not delete its files
        // (it did, and the restarted server then died writing its append-only file).
        let dir = std::mem::take(&mut self.dir);
        Self::start(self.port, dir)
    }

    /// A server on a free port, or `None` (skipped) where redis-server is missing and
    /// not required.
    fn start_scratch() -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("artel-restart-{}", uuid::Uuid::new_v4()));
        let server = Self::start(free_port(), dir);
        if server.is_none() {
            let required = std::env::var("ARTEL_REQUIRE_SERVICES").as_deref() == Ok("1");
            assert!(!required, "redis-server is required but would not start");
            eprintln!("skipped: redis-server is not installed");
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Nap;

impl Task for Nap {
    const NAME: &'static str = "nap";
    type Output = u32;

    fn run(&self, _args: Arguments, _ctx: artel_core::Context) -> BoxFuture<'static, Result<u32, TaskError>> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(1)
        })
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(6399)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_run_loses_no_task_and_no_result() {
    let Some(server) = Server::start_scratch() else { return };
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    let config = RedisConfig { lease: Duration::from_secs(2), ..RedisConfig::default() };
    let broker = RedisBroker::connect_with(&url, config, Arc::new(SystemClock)).await.expect("connect");
    let messages: Vec<_> = (0..200).map(|_| Signature::new("nap").to_message(SystemClock.now(), "test")).collect();
    let ids: Vec<String> = messages.iter().map(|m| m.headers.id.clone()).collect();
    broker.publish("celery", &messages).await.expect("publish");

    let worker_config = WorkerConfig { concurrency: 10, prefetch: 10, ..WorkerConfig::default() };
    let worker = Worker::new(&broker.backend(), Arc::new(Registry::new().with(Nap)), worker_config);
    let stop = Stop::default();
    let running = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let pool = Pool::builder().on_runtime(tokio::runtime::Handle::current()).build().expect("pool");
            worker.run(&pool, stop).await
        })
    };
    // Let part of the work finish, then restart the server under the worker.
    let deadline = Instant::now() + Duration::from_secs(60);
    while done(&broker, &ids).await < 40 {
        assert!(Instant::now() < deadline, "the first 40 tasks did not finish");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server = tokio::task::spawn_blocking(move || server.restart()).await.expect("join").expect("restarted");

    let deadline = Instant::now() + Duration::from_secs(60);
    while done(&broker, &ids).await < ids.len() {
        assert!(!running.is_finished(), "the worker stopped instead of riding out the restart");
        assert!(Instant::now() < deadline, "only {} of {} finished", done(&broker, &ids).await, ids.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.now();
    running.await.expect("join").expect("worker");
    assert_eq!(broker.len("celery").await.expect("len"), 0, "nothing left queued");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_reads_as_a_miss_while_redis_is_down_and_reconnects_after() {
    let Some(mut server) = Server::start_scratch() else { return };
    let url = format!("redis://127.0.0.1:{}/0", server.port);
    let broker = RedisBroker::connect_with(&url, RedisConfig::default(), Arc::new(SystemClock)).await.expect("connect");
    let cache = Cache::new(broker.cache_store());
    assert!(cache.set("kept", &1, None).await);
    server.stop();
    let down =
        tokio::time::timeout(Duration::from_secs(20), cache.get_or_compute("kept", None, || async { Ok::<_, ()>(2) }));
    assert_eq!(down.await.expect("answered while the server is down"), Ok(2), "computed, not failed");
    let dir = std::mem::take(&mut server.dir);
    let _server =
        tokio::task::spawn_blocking(move || Server::start(server.port, dir)).await.expect("join").expect("started");
    let deadline = Instant::now() + Duration::from_secs(20);
    while cache.get::<u32>("kept").await != Some(1) {
        assert!(Instant::now() < deadline, "the cache did not reconnect to the restarted server");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn done(broker: &RedisBroker, ids: &[String]) -> usize {
    let mut n = 0;
    for id in ids {
        if let Ok(Some(r)) = broker.get(id).await {
            n += usize::from(r.status == State::Success);
        }
    }
    n
}
