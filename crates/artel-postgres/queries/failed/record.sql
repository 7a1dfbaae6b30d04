-- Records held message $1's task (holder $2) as failed for good: task name $3, at $4,
-- entry $5, with its envelope; nothing when the caller no longer holds it (its ack is
-- then a no-op too). Returns the queue.
INSERT INTO failed (task_id, queue, task, failed_at, entry, envelope)
SELECT task_id, queue, $3, $4, $5, envelope FROM messages WHERE id = $1 AND lease_token = $2
RETURNING queue
