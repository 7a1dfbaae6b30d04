SELECT result FROM results WHERE task_id = :task_id AND (expires_at IS NULL OR expires_at > :now)
