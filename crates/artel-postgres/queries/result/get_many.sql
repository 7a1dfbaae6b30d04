-- The live results of the tasks $1 (any order; the caller matches them by id).
SELECT task_id, result FROM results WHERE task_id = ANY($1) AND (expires_at IS NULL OR expires_at > $2)
