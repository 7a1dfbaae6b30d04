//! [`PoolBuilder`]: concurrency, backlog and runtime settings of a [`Pool`].

use std::io;
use std::num::NonZeroUsize;

use tokio::runtime::{Builder, Handle as RuntimeHandle};

use crate::pool::{Limits, Pool};

/// Settings for a [`Pool`]; every limit is optional.
#[derive(Debug, Default)]
pub struct PoolBuilder {
    concurrency: Option<usize>,
    threads: Option<usize>,
    max_backlog: Option<usize>,
    worker_threads: Option<usize>,
    runtime: Option<RuntimeHandle>,
}

impl PoolBuilder {
    /// Async jobs running at once; more wait in the backlog. Default: no limit.
    pub fn concurrency(mut self, jobs: usize) -> Self {
        self.concurrency = Some(jobs);
        self
    }

    /// Blocking jobs running at once (concurrent.futures' `max_workers`).
    /// Default: the number of CPUs.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Jobs that may wait for a slot before `submit` is rejected (futurist's
    /// `reject_when_reached`). Default: no limit.
    pub fn max_backlog(mut self, jobs: usize) -> Self {
        self.max_backlog = Some(jobs);
        self
    }

    /// Threads of the pool's own tokio runtime. Default: the number of CPUs.
    pub fn worker_threads(mut self, threads: usize) -> Self {
        self.worker_threads = Some(threads);
        self
    }

    /// Runs jobs on an existing tokio runtime instead of starting one.
    pub fn on_runtime(mut self, runtime: RuntimeHandle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Builds the pool, starting its runtime unless one was given.
    pub fn build(self) -> io::Result<Pool> {
        let cpus = std::thread::available_parallelism().map_or(2, NonZeroUsize::get);
        for (name, value) in
            [("concurrency", self.concurrency), ("threads", self.threads), ("worker_threads", self.worker_threads)]
        {
            if value == Some(0) {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("pool {name} must be at least 1")));
            }
        }
        let workers = self.worker_threads.unwrap_or(cpus);
        let limits = Limits {
            concurrency: self.concurrency.unwrap_or(usize::MAX),
            threads: self.threads.unwrap_or(cpus),
            max_backlog: self.max_backlog,
            runners: if self.runtime.is_some() { cpus } else { workers },
        };
        match self.runtime {
            Some(handle) => Pool::from_parts(limits, handle, None),
            None => {
                let runtime = Builder::new_multi_thread()
                    .worker_threads(workers)
                    .thread_name("artel-pool")
                    .enable_all()
                    .build()?;
                let handle = runtime.handle().clone();
                Pool::from_parts(limits, handle, Some(runtime))
            }
        }
    }
}
