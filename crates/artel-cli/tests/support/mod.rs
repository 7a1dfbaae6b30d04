//! Shared by the process tests: worker processes and Redis key cleanup.
#![allow(dead_code, unreachable_pub)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Redis the tests use (`ARTEL_REDIS_URL`, else the local default).
pub fn redis_url() -> String {
    std::env::var("ARTEL_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// Deletes a test's Redis keys (and its side-effect file) at the end.
pub struct RedisCleanup {
    /// The key prefix the test used.
    pub prefix: String,
    /// A file the test's tasks wrote.
    pub runs: String,
}

impl Drop for RedisCleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.runs);
        let script = format!(
            "redis-cli -u '{}' --scan --pattern '{}:*' | xargs -r redis-cli -u '{}' del",
            redis_url(),
            self.prefix,
            redis_url()
        );
        let _ = Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).status();
    }
}

/// A worker process, killed if the test ends without stopping it.
pub struct WorkerProcess(pub Child);

impl WorkerProcess {
    pub fn start(url: &str, args: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_artel"))
            .args(["--broker", url, "worker"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a worker");
        Self(child)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.pid().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    pub fn wait(&mut self, patience: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "worker did not exit within {patience:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
