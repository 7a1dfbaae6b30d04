-- Frees unique key $1 if task $2 still holds it.
DELETE FROM unique_key WHERE key = $1 AND task_id = $2
