//! A Redis restart in the middle of a run loses no queued task and no stored result
//! (with persistence on): the worker rides it out and every task ends SUCCESS.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

    fn restart(mut self) -> Option<Self> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The new server keeps the directory: dropping `self` must not delete its files
        // (it did, and the restarted server then died writing its append-only file).
        let dir = std::mem::take(&mut self.dir);
        Self::start(self.port, dir)
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
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("artel-restart-{}", uuid::Uuid::new_v4()));
    let Some(server) = Server::start(port, dir) else {
        assert_ne!(
            std::env::var("ARTEL_REQUIRE_SERVICES").as_deref(),
            Ok("1"),
            "redis-server is required but would not start"
        );
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    let url = format!("redis://127.0.0.1:{port}/0");
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

async fn done(broker: &RedisBroker, ids: &[String]) -> usize {
    let mut n = 0;
    for id in ids {
        if let Ok(Some(r)) = broker.get(id).await {
            n += usize::from(r.status == State::Success);
        }
    }
    n
}
