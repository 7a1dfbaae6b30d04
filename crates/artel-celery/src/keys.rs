//! Every name kombu and Celery use on Redis, built in one place (docs/wire-format.md §b, §d, §e, §f).
//!
//! `prefix` is kombu's `global_keyprefix`: prepended to every key and channel, so a
//! Python app configured with the same prefix shares them.

/// kombu's separator inside binding members and priority list names.
pub(crate) const SEP: &str = "\x06\x16";

/// kombu's priority steps: a message goes to the list of the largest step not above its priority.
pub(crate) const STEPS: [u8; 4] = [0, 3, 6, 9];

/// Names under one `global_keyprefix` and Redis database.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) prefix: String,
    pub(crate) db: i64,
}

impl Names {
    /// The list holding `queue`'s messages of `priority` (0 is served first, as in kombu).
    pub(crate) fn list(&self, queue: &str, priority: u8) -> String {
        let step = STEPS.iter().rev().copied().find(|s| *s <= priority.min(9)).unwrap_or(0);
        self.step_list(queue, step)
    }

    fn step_list(&self, queue: &str, step: u8) -> String {
        match step {
            0 => format!("{}{queue}", self.prefix),
            step => format!("{}{queue}{SEP}{step}", self.prefix),
        }
    }

    /// Every list of `queue`, highest priority first.
    pub(crate) fn lists(&self, queue: &str) -> Vec<String> {
        STEPS.iter().map(|step| self.step_list(queue, *step)).collect()
    }

    /// The lists of several queues in kombu's BRPOP order: all at step 0, then step 3...
    pub(crate) fn brpop_order(&self, queues: &[String]) -> Vec<String> {
        STEPS.iter().flat_map(|step| queues.iter().map(move |q| self.step_list(q, *step))).collect()
    }

    /// HASH delivery tag -> `[envelope, exchange, routing_key]` of messages held by consumers.
    pub(crate) fn unacked(&self) -> String {
        format!("{}unacked", self.prefix)
    }

    /// ZSET delivery tag -> time taken (unix seconds), for restoring abandoned messages.
    pub(crate) fn unacked_index(&self) -> String {
        format!("{}unacked_index", self.prefix)
    }

    /// The mutex one restorer holds while it restores.
    pub(crate) fn unacked_mutex(&self) -> String {
        format!("{}unacked_mutex", self.prefix)
    }

    /// SET of `routing_key SEP pattern SEP queue` members of `exchange`.
    pub(crate) fn binding(&self, exchange: &str) -> String {
        format!("{}_kombu.binding.{exchange}", self.prefix)
    }

    /// The member of a direct exchange's binding that routes key `queue` to `queue`.
    pub(crate) fn binding_member(queue: &str) -> String {
        format!("{queue}{SEP}{SEP}{queue}")
    }

    /// LIST of `{queue, reason, envelope}` artel rejected (kombu has no dead letters).
    pub(crate) fn dead_list(&self) -> String {
        format!("{}_artel.dead", self.prefix)
    }

    /// HASH delivery tag -> deliveries to artel consumers not handed back (a count past
    /// one: earlier holders died); kombu keeps no such count.
    pub(crate) fn deliveries(&self) -> String {
        format!("{}_artel.deliveries", self.prefix)
    }

    /// The revocation log artel workers poll (Celery keeps revokes in worker memory).
    pub(crate) fn revocations(&self) -> (String, String) {
        (format!("{}_artel.revoked", self.prefix), format!("{}_artel.revoked.seq", self.prefix))
    }

    /// A task's result (and the channel it is announced on).
    pub(crate) fn result(&self, task_id: &str) -> String {
        format!("{}celery-task-meta-{task_id}", self.prefix)
    }

    /// A group's key `G` (a saved group) or its chord bookkeeping `G<suffix>` (`.j`, `.s`,
    /// `.t`, `.d`, `.c`; docs/wire-format.md §d.1, §d.6).
    pub(crate) fn chord(&self, group_id: &str, suffix: &str) -> String {
        format!("{}celery-taskset-meta-{group_id}{suffix}", self.prefix)
    }

    /// The PUB/SUB channel of a fanout exchange (`celeryev`, `celery.pidbox`) and routing key.
    pub(crate) fn fanout(&self, exchange: &str, routing_key: &str) -> String {
        match routing_key {
            "" => format!("{}/{}.{exchange}", self.prefix, self.db),
            key => format!("{}/{}.{exchange}/{key}", self.prefix, self.db),
        }
    }

    /// The reply list of a remote-control client `oid`.
    pub(crate) fn reply_list(&self, oid: &str) -> String {
        format!("{}{oid}.reply.celery.pidbox", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_kombu() {
        let n = Names { prefix: String::new(), db: 0 };
        assert_eq!(n.list("celery", 0), "celery");
        assert_eq!(n.list("celery", 5), "celery\x06\x163");
        assert_eq!(n.list("celery", 9), "celery\x06\x169");
        assert_eq!(n.list("celery", 200), "celery\x06\x169");
        let order = n.brpop_order(&["a".to_owned(), "b".to_owned()]);
        assert_eq!(&order[..3], ["a", "b", "a\x06\x163"]);
        assert_eq!(n.fanout("celeryev", "worker.heartbeat"), "/0.celeryev/worker.heartbeat");
        assert_eq!(n.fanout("celery.pidbox", ""), "/0.celery.pidbox");
        assert_eq!(n.result("x"), "celery-task-meta-x");
        assert_eq!(n.chord("g", ".j"), "celery-taskset-meta-g.j");
    }
}
