SELECT seq, task_id, terminate, expires_at FROM revocations
WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3
