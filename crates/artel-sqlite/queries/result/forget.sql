-- Forgets a task's stored result: it reads as PENDING until stored again.
DELETE FROM results WHERE task_id = :task_id
