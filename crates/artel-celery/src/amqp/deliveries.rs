//! Delivery counts for RabbitMQ, whose classic queues only say "redelivered": kept in the
//! Celery Redis result backend next to the results, one key per task id with a TTL, and
//! touched only when a message comes back or is handed back, so a first delivery that
//! ends normally costs nothing.
//!
//! Invariant: the stored number is how many deliveries were lost with their worker. A
//! redelivered message increments it and counts `stored + 1` deliveries; a hand-back
//! (requeue, release, or a first delivery that goes back with a closing channel)
//! decrements it, offsetting the increment its next, "redelivered", delivery will make;
//! settling a redelivered message deletes it.

use std::time::Duration;

use artel_redis::toolkit::redis_error;

use crate::CeleryRedis;

/// How long a count outlives its last touch: far longer than a message waits for its
/// redelivery (which RabbitMQ makes as soon as the holder's channel closes).
const KEPT: Duration = Duration::from_secs(7 * 86_400);

/// Delivery counts of messages consumed from RabbitMQ, kept in `backend`'s Redis.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryCounts {
    backend: CeleryRedis,
}

impl DeliveryCounts {
    pub(crate) fn new(backend: CeleryRedis) -> Self {
        Self { backend }
    }

    fn key(&self, task_id: &str) -> String {
        format!("{}_artel.deliveries.{task_id}", self.backend.shared.names.prefix)
    }

    async fn add(&self, task_id: &str, n: i64) -> Result<i64, redis::RedisError> {
        let mut conn = self.backend.shared.conn.clone();
        let ttl = i64::try_from(KEPT.as_millis()).unwrap_or(i64::MAX);
        let (count, _): (i64, i64) =
            redis::pipe().incr(self.key(task_id), n).pexpire(self.key(task_id), ttl).query_async(&mut conn).await?;
        Ok(count)
    }

    /// Counts a redelivery of `task_id`'s message; returns its deliveries, this one
    /// included (0, unknown, when Redis cannot be reached: the message still runs).
    pub(crate) async fn redelivered(&self, task_id: &str) -> u32 {
        if task_id.is_empty() {
            return 0;
        }
        match self.add(task_id, 1).await {
            Ok(lost) => u32::try_from(lost.saturating_add(1)).unwrap_or(1).max(1),
            Err(e) => {
                tracing::warn!(error = %redis_error("counting a redelivery", e), "the delivery is not counted");
                0
            }
        }
    }

    /// Undoes the count of a delivery that is handed back (it was not lost). Awaited
    /// before the message goes back: RabbitMQ redelivers at once, and the redelivery must
    /// find the count already lowered.
    pub(crate) async fn handed_back(&self, task_id: &str) {
        if task_id.is_empty() {
            return;
        }
        if let Err(e) = self.add(task_id, -1).await {
            tracing::warn!(error = %redis_error("uncounting a handed-back delivery", e), "its next delivery may count one too many");
        }
    }

    /// Forgets the count of a message that is settled for good.
    pub(crate) fn settled(&self, task_id: &str) {
        let (counts, task_id) = (self.clone(), task_id.to_owned());
        spawn(async move {
            let mut conn = counts.backend.shared.conn.clone();
            let deleted: Result<i64, _> = redis::cmd("DEL").arg(counts.key(&task_id)).query_async(&mut conn).await;
            if let Err(e) = deleted {
                tracing::warn!(error = %redis_error("forgetting a delivery count", e), "it expires by itself");
            }
        });
    }
}

/// Runs `work` on the current runtime, if there is one (a drop outside any does nothing).
fn spawn(work: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(work);
    }
}
