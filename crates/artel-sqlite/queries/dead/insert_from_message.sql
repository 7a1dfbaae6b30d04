INSERT INTO dead (queue, task_id, reason, died_at, deliveries, envelope)
SELECT queue, task_id, :reason, :now, deliveries, envelope FROM messages WHERE id = :id AND lease_token = :token
