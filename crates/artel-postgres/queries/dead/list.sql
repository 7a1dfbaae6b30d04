SELECT id, queue, task_id, reason, died_at, deliveries FROM dead
WHERE $1::text IS NULL OR queue = $1 ORDER BY id LIMIT $2
