-- Deletes up to $2 expired results.
DELETE FROM results WHERE task_id IN (SELECT task_id FROM results WHERE expires_at <= $1 LIMIT $2)
