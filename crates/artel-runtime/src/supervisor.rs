//! Supervising a worker's components (see [`artel_core::worker::Component`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use artel_core::worker::{Component, ComponentError, Scope};
use tokio::task::JoinHandle;

/// Restart pauses: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(30));

/// A run this long counts as healthy: the next failure starts the backoff over.
const HEALTHY: Duration = Duration::from_secs(60);

/// Starts `component` under supervision.
pub(crate) fn supervise(component: Arc<dyn Component>, scope: Scope) -> JoinHandle<()> {
    tokio::spawn(async move {
        let name = component.name();
        let mut backoff = BACKOFF.0;
        loop {
            let started = Instant::now();
            let attempt = {
                let (component, scope) = (component.clone(), scope.clone());
                tokio::spawn(async move { component.run(&scope).await })
            };
            let reason = match attempt.await {
                Ok(Ok(())) => return,
                Ok(Err(ComponentError::Fatal(reason))) => {
                    tracing::error!(component = name, %reason, "stopping the worker: a component cannot run");
                    scope.stop.warm.cancel();
                    return;
                }
                Ok(Err(ComponentError::Failed(reason))) => reason,
                Err(panic) => format!("panicked: {panic}"),
            };
            if started.elapsed() >= HEALTHY {
                backoff = BACKOFF.0;
            }
            tracing::warn!(component = name, %reason, retry_in = ?backoff, "a worker component failed; restarting it");
            if !scope.sleep(backoff).await {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use artel_core::memory::{MemoryBackend, MemoryBroker};
    use artel_core::{Backend, Registry};
    use artel_pool::Pool;

    use artel_core::worker::Stop;
    use async_trait::async_trait;

    use super::*;
    use crate::{Worker, WorkerConfig};

    /// Fails (or panics) on its first `failures` runs, then stops the worker.
    #[derive(Debug)]
    struct Flaky {
        runs: Arc<AtomicU32>,
        failures: u32,
        panics: bool,
    }

    #[async_trait]
    impl Component for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }

        async fn run(&self, scope: &Scope) -> Result<(), ComponentError> {
            let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
            if run <= self.failures {
                assert!(!self.panics, "run {run} panics");
                return Err(ComponentError::Failed(format!("run {run} fails")));
            }
            scope.stop.warm.cancel();
            Ok(())
        }
    }

    /// Can never run.
    #[derive(Debug)]
    struct Misconfigured;

    #[async_trait]
    impl Component for Misconfigured {
        fn name(&self) -> &'static str {
            "misconfigured"
        }

        async fn run(&self, _: &Scope) -> Result<(), ComponentError> {
            Err(ComponentError::Fatal("no such thing".to_owned()))
        }
    }

    async fn run_with(component: impl Component) {
        let backend = Backend::new(Arc::new(MemoryBroker::new()), MemoryBackend::new());
        let worker =
            Worker::new(&backend, Arc::new(Registry::new()), WorkerConfig::default()).with_component(component);
        let pool = Pool::builder().on_runtime(tokio::runtime::Handle::current()).build().expect("pool");
        let run = worker.run(&pool, Stop::default());
        tokio::time::timeout(Duration::from_secs(60), run).await.expect("the worker stops").expect("cleanly");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_component_is_restarted_after_a_backoff() {
        let runs = Arc::new(AtomicU32::new(0));
        let started = tokio::time::Instant::now();
        run_with(Flaky { runs: runs.clone(), failures: 3, panics: false }).await;
        assert_eq!(runs.load(Ordering::SeqCst), 4, "three failures, then the run that stops the worker");
        assert!(
            started.elapsed() >= Duration::from_millis(700),
            "100 + 200 + 400 ms of backoff: {:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_component_is_restarted_too() {
        let runs = Arc::new(AtomicU32::new(0));
        run_with(Flaky { runs: runs.clone(), failures: 2, panics: true }).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_component_that_cannot_run_stops_the_worker() {
        run_with(Misconfigured).await;
    }
}
