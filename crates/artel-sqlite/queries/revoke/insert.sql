INSERT INTO revocations (task_id, terminate, expires_at) VALUES (:task_id, :terminate, :expires_at)
