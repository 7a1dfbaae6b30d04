-- Forgets task $1's result, so its next run's can be stored.
DELETE FROM results WHERE task_id = $1
