//! Every Redis key artel uses, built in one place.
//!
//! All keys of one queue share the hash tag `{queue}`, so each Lua script touches a
//! single Redis Cluster slot.

/// The keys of one queue.
#[derive(Debug, Clone)]
pub(crate) struct QueueKeys {
    /// ZSET id -> (9 - priority) * 1e13 + sequence: ready messages, best first.
    pub(crate) pending: String,
    /// ZSET id -> visible-at ms: delayed messages.
    pub(crate) scheduled: String,
    /// ZSET id -> lease deadline ms: messages held by consumers.
    pub(crate) leases: String,
    /// HASH id -> envelope.
    pub(crate) messages: String,
    /// HASH id -> priority + 10 x deliveries not handed back (a count past one: earlier
    /// holders died); one field, so counting a delivery is one command.
    pub(crate) priorities: String,
    /// HASH id -> holder token.
    pub(crate) holders: String,
    /// STRING: the last turn given to a message without a group (FIFO within a priority).
    pub(crate) sequence: String,
    /// HASH group -> the last turn given to a message of that group.
    pub(crate) turns: String,
    /// STRING: the largest turn claimed so far, where a group new to the queue starts.
    pub(crate) clock: String,
    /// LIST with at most one token: wakes a consumer blocked on an empty queue.
    pub(crate) signal: String,
    /// LIST of dead entries (JSON).
    pub(crate) dead: String,
    /// ZSET task id -> failed at ms: tasks that failed for good, newest kept.
    pub(crate) failed: String,
    /// HASH task id -> failure JSON (`artel_core::FailedTask`).
    pub(crate) failed_entries: String,
    /// HASH task id -> the failed message's envelope, to publish it again.
    pub(crate) failed_envelopes: String,
}

impl QueueKeys {
    /// The keys of a held message, in the order `drop_held` (lua/lib/common.lua) takes them.
    pub(crate) fn held(&self) -> [&str; 4] {
        [&self.leases, &self.messages, &self.priorities, &self.holders]
    }

    pub(crate) fn new(prefix: &str, queue: &str) -> Self {
        let key = |part: &str| format!("{prefix}:{{{queue}}}:{part}");
        Self {
            pending: key("pending"),
            scheduled: key("scheduled"),
            leases: key("leases"),
            messages: key("messages"),
            priorities: key("priorities"),
            holders: key("holders"),
            sequence: key("seq"),
            turns: key("turns"),
            clock: key("clock"),
            signal: key("signal"),
            dead: key("dead"),
            failed: key("failed"),
            failed_entries: key("failed_entries"),
            failed_envelopes: key("failed_envelopes"),
        }
    }
}

/// The key (and pub/sub channel) of a task's result.
pub(crate) fn result(prefix: &str, task_id: &str) -> String {
    format!("{prefix}:result:{task_id}")
}

/// The hash of a chord's recorded members.
pub(crate) fn chord(prefix: &str, group_id: &str) -> String {
    format!("{prefix}:chord:{group_id}")
}

/// The revocation log and its sequence counter (one hash tag: one script writes both).
pub(crate) fn revocations(prefix: &str) -> (String, String) {
    // Not `{prefix}:{name}:...`: that shape is a queue's (see admin.rs).
    (format!("{prefix}:revocations:{{r}}:log"), format!("{prefix}:revocations:{{r}}:seq"))
}

/// The task history's keys, in the order `lua/history_record.lua` takes them; one hash
/// tag. The last is the prefix of the per-state indexes.
pub(crate) fn history(prefix: &str) -> [String; 6] {
    // Not `{prefix}:{name}:...`: that shape is a queue's (see admin.rs).
    let key = |part: &str| format!("{prefix}:history:{{h}}:{part}");
    [key("records"), key("recent"), key("seq"), key("minutes"), key("minute_index"), key("state:")]
}

/// The set of queue names used, so listing queues needs no SCAN.
pub(crate) fn queues(prefix: &str) -> String {
    format!("{prefix}:queues")
}

/// The stream of remote-control requests for every worker.
pub(crate) fn control_requests(prefix: &str) -> String {
    format!("{prefix}:control:requests")
}

/// The list of replies to the remote-control request with `ticket`.
pub(crate) fn control_replies(prefix: &str, ticket: &str) -> String {
    format!("{prefix}:control:reply:{ticket}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_queues_keys_share_one_hash_tag() {
        let k = super::QueueKeys::new("artel", "emails");
        for key in [
            &k.pending,
            &k.scheduled,
            &k.leases,
            &k.messages,
            &k.priorities,
            &k.holders,
            &k.sequence,
            &k.turns,
            &k.clock,
            &k.signal,
            &k.dead,
        ] {
            assert!(key.starts_with("artel:{emails}:"), "{key}");
        }
    }
}
