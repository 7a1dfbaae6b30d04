//! Per-group concurrency caps (`max_running_per_group = 3`): at most that many runs of
//! one group (a tenant, [`artel_core::Signature::group_key`]) at once across every
//! worker of the backend.
//!
//! Invariants: a capped run starts only while it holds one of its group's `cap` slots,
//! each a leased lock of the backend (`group.{group}.{slot}`), so a worker that dies
//! frees its slot within [`crate::exclusive::MUTEX_LEASE`]; tasks with different caps share the slots,
//! one with cap `n` taking one of the first `n`. A run finding every slot taken is never
//! spun on and never holds a worker slot: it is published again for later, with a
//! doubling delay, like a mutex task. Messages without a group are not capped.

use artel_core::{Delivery, TaskError, TaskOptions};

use crate::exclusive::{NO_LOCKS, Turn, defer_delay, lock_key, times};
use crate::execute::Dispatcher;

/// The header counting how often a run found its group's slots taken.
const CROWDED_HEADER: &str = "artel_group_full";

/// The largest cap: a full group costs one lock attempt per slot.
pub(crate) const MAX_CAP: u32 = 64;

impl Dispatcher {
    /// Takes one of the group's slots when the task caps runs per group; a run finding
    /// them all taken is published again for later.
    pub(crate) async fn take_group_slot(&self, delivery: Delivery, options: &TaskOptions) -> Turn {
        let (Some(cap), Some(group)) = (options.max_running_per_group, delivery.message().fair_group()) else {
            return Turn::Free(delivery);
        };
        let headers = &delivery.message().headers;
        let (task, id) = (headers.task.clone(), headers.id.clone());
        if cap == 0 || cap > MAX_CAP {
            let problem = format!("max_running_per_group is {cap}: it must be 1 to {MAX_CAP}");
            return Turn::Bad(delivery, TaskError::msg(format!("task {task}: {problem}")));
        }
        let Some(locks) = &self.locks else {
            let error = TaskError::msg(format!("task {task} caps its runs per group, {NO_LOCKS}"));
            return Turn::Bad(delivery, error);
        };
        // From a random slot on, so that runs of one group seldom race for the same one.
        let first = fastrand::u32(0..cap);
        for slot in (0..cap).map(|n| (first + n) % cap) {
            match locks.try_acquire(&lock_key("group", &format!("group.{group}.{slot}"))).await {
                Ok(Some(guard)) => return Turn::Held(delivery, guard),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%task, %id, %group, %error, "cannot reach the group's slots; the message goes back to the queue");
                    return self.hand_back_now(delivery).await;
                }
            }
        }
        let deferrals = times(headers, CROWDED_HEADER);
        let wait = defer_delay(deferrals, fastrand::f64());
        tracing::debug!(%task, %id, %group, cap, ?wait, "its group runs its most at once: published again for later");
        self.put_off(delivery, CROWDED_HEADER, deferrals, wait).await
    }
}
