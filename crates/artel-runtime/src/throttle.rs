//! Rate limits shared by every worker (`rate_limit_global = "50/s"`, per key with
//! `rate_limit_key = "{customer_id}"`), kept by the backend ([`artel_core::RateLimits`]).
//!
//! Invariants: a run starts only once the backend admitted it, so runs of one key start
//! at most once per interval across all workers; a run refused is never spun on and
//! never holds its slot: its message is published again with an ETA (its booked slot
//! the first time, so a backlog spreads over the slots; later, the next free moment) and
//! counted as deferred. When the backend cannot be asked, the message goes back to the
//! queue untouched.

use std::time::Duration;

use artel_core::{Admission, Delivery, TaskError, TaskOptions};
use serde_json::{Map, Value};

use crate::exclusive::{Turn, call_key, times};
use crate::execute::Dispatcher;

/// The header counting how often a run was refused by its shared rate limit.
const THROTTLED_HEADER: &str = "artel_throttled";

impl Dispatcher {
    /// Asks the backend whether the run may start under the task's shared rate limit;
    /// a run that may not is published again for its turn.
    pub(crate) async fn admit(
        &self,
        delivery: Delivery,
        options: &TaskOptions,
        params: &[&str],
        args: &[Value],
        kwargs: &Map<String, Value>,
    ) -> Turn {
        let Some(rate) = options.rate_limit_global.as_deref() else { return Turn::Free(delivery) };
        let headers = &delivery.message().headers;
        let (task, id) = (headers.task.clone(), headers.id.clone());
        let interval = match artel_core::rates::interval(rate) {
            Ok(interval) => interval,
            Err(problem) => return Turn::Bad(delivery, TaskError::invalid_arguments(&task, problem)),
        };
        let template = options.rate_limit_key.as_deref().unwrap_or_default();
        let key = match call_key("rate", &task, template, params, args, kwargs) {
            Ok(key) => key,
            Err(error) => return Turn::Bad(delivery, error),
        };
        let Some(rates) = &self.rates else {
            let error = TaskError::msg(format!(
                "task {task} has rate_limit_global {rate:?}, but this broker keeps no shared rate limits: use sqlite://, redis://, postgres://, celery+redis:// or amqp:// with Redis results"
            ));
            return Turn::Bad(delivery, error);
        };
        let refusals = times(headers, THROTTLED_HEADER);
        match rates.admit(&key, interval, refusals == 0).await {
            Ok(Admission::Now) => Turn::Free(delivery),
            Ok(Admission::After(wait)) => {
                // Booked the first time; later, the next free moment plus a little, so
                // runs refused together do not all come back in the same instant.
                let wait = match refusals {
                    0 => wait,
                    _ => wait + interval.mul_f64(fastrand::f64()),
                };
                tracing::debug!(%task, %id, %key, ?wait, "over its shared rate limit: published again for its turn");
                self.put_off(delivery, THROTTLED_HEADER, refusals, wait).await
            }
            Err(error) => {
                tracing::warn!(%task, %id, %key, %error, "cannot reach the shared rate limit; the message goes back to the queue");
                // Not straight back: the broker is failing, and the run would ask again at once.
                tokio::time::sleep(Duration::from_millis(100)).await;
                self.hand_back_now(delivery).await
            }
        }
    }
}
