SELECT id, queue, task_id, reason, died_at, deliveries FROM dead
WHERE :queue IS NULL OR queue = :queue ORDER BY id LIMIT :limit
