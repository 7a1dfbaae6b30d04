//! kombu's Redis layout as a lease store for [`artel_core::leased::LeasedConsumer`]: a
//! claim moves messages from the queue lists into `unacked` (scored in `unacked_index` by
//! when they were last seen); the heartbeat re-scores held ones and restores what dead
//! consumers abandoned past the visibility timeout. kombu has no holder token and no
//! delayed delivery: the consumer holds ETA messages until due.

use std::time::Duration;

use artel_core::leased::{Claim, Claimed, LeaseStore, Stored};
use artel_core::{BrokerError, BrokerErrorKind, BrokerResult, FailedTask, Message, Queues, TaskResult};
use artel_redis::Conn;
use artel_redis::completer::BatchWrite;
use artel_redis::toolkit::redis_error;
use async_trait::async_trait;

use crate::keys::Names;
use crate::shared::Shared;

/// A held message: its delivery tag, and the list it goes back to.
#[derive(Debug, Clone)]
pub(crate) struct Tag {
    tag: String,
    queue: String,
    priority: u8,
}

/// The delivery tag alone names the message: a claim knows it before
/// [`LeaseStore::address`] adds the list from the message, and both must be one id (the
/// consumer's held set was never emptied when they differed).
impl PartialEq for Tag {
    fn eq(&self, other: &Self) -> bool {
        self.tag == other.tag
    }
}

impl Eq for Tag {}

impl std::hash::Hash for Tag {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.tag.hash(state);
    }
}

impl Shared {
    /// Moves a held message to `target`: `LPUSH` joins the back of its queue, `RPUSH`
    /// goes next, `DEAD` to the dead letters with `reason`.
    async fn move_held(&self, held: &Tag, how: &str, target: &str, reason: &str) -> BrokerResult<()> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .scripts
            .restore
            .key(self.names.unacked())
            .key(self.names.unacked_index())
            .key(target)
            .key(self.names.deliveries())
            .key(self.names.dead_list())
            .arg(&held.tag)
            .arg(how)
            .arg(&held.queue)
            .arg(reason)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("putting a message back", e))?;
        Ok(())
    }

    /// Puts a held message back in its queue's list.
    async fn restore(&self, held: &Tag, how: &str) -> BrokerResult<()> {
        self.move_held(held, how, &self.names.list(&held.queue, held.priority), "").await
    }
}

#[async_trait]
impl LeaseStore for Shared {
    type Id = Tag;
    type Waiter = ();

    fn heartbeat_every(&self) -> Duration {
        (self.config.visibility_timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(60))
    }

    fn holds_delayed(&self) -> bool {
        false
    }

    fn address(&self, held: Tag, message: &Message) -> Tag {
        Tag { queue: message.queue().to_owned(), priority: message.properties.priority, ..held }
    }

    async fn waiter(&self, _queues: &Queues) -> BrokerResult<()> {
        Ok(())
    }

    async fn claim(&self, queues: &Queues, _holder: &str, limit: usize) -> BrokerResult<Claim<Tag>> {
        let names = &self.names;
        let mut invocation = self.scripts.claim.prepare_invoke();
        invocation.key(names.unacked()).key(names.unacked_index()).key(names.dead_list()).key(names.deliveries());
        for list in names.brpop_order(queues) {
            invocation.key(list);
        }
        invocation.arg(artel_core::time::unix_seconds()).arg(limit);
        let mut conn = self.conn.clone();
        let taken: Vec<Vec<u8>> =
            invocation.invoke_async(&mut conn).await.map_err(|e| redis_error("taking messages", e))?;
        let messages = taken
            .chunks_exact(3)
            .map(|claimed| Claimed {
                id: Tag { tag: String::from_utf8_lossy(&claimed[0]).into_owned(), queue: String::new(), priority: 0 },
                envelope: claimed[1].clone(),
                deliveries: std::str::from_utf8(&claimed[2]).ok().and_then(|n| n.parse().ok()).unwrap_or(1),
            })
            .collect();
        Ok(Claim { messages, next_visible: None })
    }

    /// kombu signals nothing on publish: an idle consumer polls.
    async fn wait_for_work(&self, _waiter: &mut (), due_in: Option<Duration>) -> BrokerResult<()> {
        let poll = self.config.poll;
        tokio::time::sleep(due_in.map_or(poll, |d| d.min(poll))).await;
        Ok(())
    }

    /// Re-scores held messages (so no restorer takes them while this consumer lives),
    /// then restores messages abandoned by dead consumers.
    async fn extend(&self, holder: &str, held: &[Tag]) -> BrokerResult<()> {
        let mut conn = self.conn.clone();
        if !held.is_empty() {
            let now = artel_core::time::unix_seconds();
            let mut pipe = redis::pipe();
            for tag in held {
                pipe.cmd("ZADD").arg(self.names.unacked_index()).arg("XX").arg(now).arg(&tag.tag).ignore();
            }
            pipe.query_async::<()>(&mut conn).await.map_err(|e| redis_error("refreshing held messages", e))?;
        }
        let abandoned_before = artel_core::time::unix_seconds() - self.config.visibility_timeout.as_secs_f64();
        let restored: i64 = self
            .scripts
            .sweep
            .key(self.names.unacked())
            .key(self.names.unacked_index())
            .key(self.names.unacked_mutex())
            .key(self.names.dead_list())
            .arg(abandoned_before)
            .arg(holder)
            .arg(300_000)
            .arg(&self.names.prefix)
            .arg(1000)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("restoring abandoned messages", e))?;
        if restored > 0 {
            tracing::warn!(restored, "restored messages abandoned by a stopped consumer");
        }
        Ok(())
    }

    /// kombu's ack is unguarded: it always reports the message as held.
    async fn ack(&self, _holder: &str, held: &Tag) -> BrokerResult<bool> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .scripts
            .ack
            .key(self.names.unacked())
            .key(self.names.unacked_index())
            .key(self.names.deliveries())
            .arg(&held.tag)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("acknowledging a message", e))?;
        Ok(true)
    }

    /// Celery keeps no failed-task list: the FAILURE result is the record.
    async fn ack_failed(&self, holder: &str, held: &Tag, _failure: &FailedTask) -> BrokerResult<bool> {
        self.ack(holder, held).await
    }

    async fn ack_with_result(
        &self,
        _holder: &str,
        held: &Tag,
        result: &TaskResult,
        ttl: Option<Duration>,
    ) -> BrokerResult<Option<Stored>> {
        let json = serde_json::to_vec(result)
            .map_err(|e| BrokerError::new(BrokerErrorKind::Other, "encoding a result").with_source(e))?;
        let finished = Finished {
            result_key: self.names.result(&result.task_id),
            json,
            ttl_ms: artel_redis::toolkit::ttl_ms(ttl),
            tag: held.tag.clone(),
        };
        self.completions.complete(finished).await.map(Some)
    }

    /// Next in line: a hand-back keeps its place.
    async fn release(&self, _holder: &str, held: &Tag) -> BrokerResult<()> {
        self.restore(held, "RPUSH").await
    }

    /// At the back of the queue, as kombu's `basic_reject(requeue=True)`.
    async fn requeue(&self, _holder: &str, held: &Tag) -> BrokerResult<()> {
        self.restore(held, "LPUSH").await
    }

    async fn bury(&self, _holder: &str, held: &Tag, reason: &str) -> BrokerResult<()> {
        self.move_held(held, "DEAD", &self.names.dead_list(), reason).await
    }
}

/// A finished task for `complete.lua`: its result, and the delivery tag to forget.
pub(crate) struct Finished {
    result_key: String,
    json: Vec<u8>,
    ttl_ms: u64,
    tag: String,
}

/// Writes finished tasks with one `complete.lua` call (kombu's keys are not per queue:
/// every row shares one group).
pub(crate) struct CompleteScript {
    pub(crate) script: redis::Script,
    pub(crate) names: Names,
}

#[async_trait]
impl BatchWrite for CompleteScript {
    type Row = Finished;

    fn group(_: &Finished) -> &str {
        ""
    }

    fn message(row: &Finished) -> &str {
        &row.tag
    }

    async fn write(&self, conn: &mut Conn, rows: &[Finished]) -> BrokerResult<Vec<Stored>> {
        let names = &self.names;
        let mut call = self.script.key(names.unacked());
        call.key(names.unacked_index()).key(names.deliveries());
        for row in rows {
            call.key(&row.result_key);
        }
        for row in rows {
            call.arg(&row.json).arg(row.ttl_ms).arg(&row.tag);
        }
        let written: Vec<i64> =
            call.invoke_async(conn).await.map_err(|e| redis_error("storing results and acknowledging", e))?;
        // kombu's ack is unguarded: every message counts as held.
        Ok(written.into_iter().map(|w| Stored { written: w == 1, held: true }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use artel_core::{Clock, Signature, SystemClock};

    #[test]
    fn a_claimed_tag_and_the_same_tag_addressed_are_one_held_message() {
        let claimed = Tag { tag: "t-1".into(), queue: String::new(), priority: 0 };
        let message = Signature::new("add").queue("emails").to_message(SystemClock.now(), "test");
        let addressed = Tag { queue: message.queue().to_owned(), priority: 9, ..claimed.clone() };
        let mut held = std::collections::HashSet::from([claimed]);
        assert!(held.remove(&addressed), "acking the addressed tag forgets the claimed one");
        assert!(held.is_empty());
        assert_ne!(addressed, Tag { tag: "t-2".into(), ..addressed.clone() });
    }
}
