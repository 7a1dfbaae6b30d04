INSERT INTO revocations (task_id, terminate, expires_at) VALUES ($1, $2, $3)
