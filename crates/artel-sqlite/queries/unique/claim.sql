-- Claims a unique key for a task unless another task's claim is still live.
INSERT INTO unique_key (key, task_id, expires_at) VALUES (:key, :task_id, :expires_at)
ON CONFLICT (key) DO UPDATE SET task_id = excluded.task_id, expires_at = excluded.expires_at
    WHERE unique_key.expires_at <= :now;
