SELECT seq, task_id, terminate, expires_at FROM revocations
WHERE seq > :cursor AND expires_at > :now ORDER BY seq LIMIT :limit
