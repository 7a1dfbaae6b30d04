-- Wakes the processes listening on channel $1 once the transaction commits: idle
-- consumers for a publish (one notification per batch, naming the queue), result
-- waiters for a ready result (naming the task).
SELECT pg_notify($1, $2)
