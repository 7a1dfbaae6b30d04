-- Forgets the stored outcome (the FAILURE of the rejection) of dead messages about to be
-- retried (of queue $1, or all), so the new run's outcome is what readers see: PENDING
-- until then.
DELETE FROM results WHERE task_id IN (SELECT task_id FROM dead WHERE $1::text IS NULL OR queue = $1)
