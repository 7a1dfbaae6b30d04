-- Frees a unique key if the given task still holds it.
DELETE FROM unique_key WHERE key = :key AND task_id = :task_id;
