-- Records a held message's task as failed for good, with its envelope; nothing when the
-- caller no longer holds it (its ack is then a no-op too). Returns the queue.
INSERT INTO failed (task_id, queue, task, failed_at, entry, envelope)
SELECT task_id, queue, :task, :failed_at, :entry, envelope FROM messages WHERE id = :id AND lease_token = :token
RETURNING queue
