//! [`ResultHub`]: many waiters, one [`ResultWatch`]. Each `wait` registers a task id with
//! a background task that watches them all on one connection (one subscription on Redis,
//! one batched read on SQLite), so thousands of results in flight cost no connection
//! each. What `App::map_stream` and `artel map --broker` wait with.
//!
//! A backend that stays unreachable for [`GIVE_UP`] fails the waiters then waiting; until
//! then a failed read is retried each second.

use std::collections::HashMap;
use std::time::Duration;

use artel_core::{Backend, BrokerError, BrokerErrorKind, ResultWatch, TaskResult};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long the backend may stay unreachable before waiters get its error.
const GIVE_UP: Duration = Duration::from_secs(60);

type Reply = oneshot::Sender<Result<TaskResult, BrokerError>>;

/// Waits for the results of many tasks at once.
#[derive(Debug)]
pub struct ResultHub {
    requests: mpsc::UnboundedSender<(String, Reply)>,
    task: JoinHandle<()>,
}

impl ResultHub {
    /// A hub on `backend`'s results; must be called inside a tokio runtime.
    pub async fn start(backend: &Backend) -> Result<Self, BrokerError> {
        let watch = backend.watch().await?;
        let (requests, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(serve(watch, receiver));
        Ok(Self { requests, task })
    }

    /// Waits until task `id` is ready (a final state) and returns its result.
    ///
    /// # Cancel safety
    /// Cancel safe: the hub forgets a waiter that went away once its result comes.
    pub async fn wait(&self, id: String) -> Result<TaskResult, BrokerError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || BrokerError::new(BrokerErrorKind::Other, "the result hub stopped");
        self.requests.send((id, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for ResultHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut watch: ResultWatch, mut requests: mpsc::UnboundedReceiver<(String, Reply)>) {
    let mut waiting: HashMap<String, Vec<Reply>> = HashMap::new();
    let mut failing_since: Option<tokio::time::Instant> = None;
    loop {
        let outcome = tokio::select! {
            biased;
            request = requests.recv() => {
                let Some((id, reply)) = request else { return };
                let mut ids = vec![id.clone()];
                waiting.entry(id).or_default().push(reply);
                while let Ok((id, reply)) = requests.try_recv() {
                    ids.push(id.clone());
                    waiting.entry(id).or_default().push(reply);
                }
                watch.watch(&ids).await.map(|()| Vec::new())
            }
            ready = watch.next(Duration::from_secs(3600)), if !watch.is_empty() => ready,
        };
        match outcome {
            Ok(ready) => {
                failing_since = None;
                for result in ready {
                    for reply in waiting.remove(&result.task_id).unwrap_or_default() {
                        let _ = reply.send(Ok(result.clone()));
                    }
                }
            }
            Err(error) => {
                let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= GIVE_UP {
                    tracing::error!(%error, waiters = waiting.len(), "results unreadable for a minute; failing the waiters");
                    // Their tasks stay watched: a result read later is dropped, not lost in the store.
                    for (_, replies) in waiting.drain() {
                        for reply in replies {
                            let _ = reply.send(Err(BrokerError::new(error.kind(), error.to_string())));
                        }
                    }
                    failing_since = None;
                } else {
                    tracing::warn!(%error, "reading results failed; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
