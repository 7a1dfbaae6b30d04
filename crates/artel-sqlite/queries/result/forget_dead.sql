-- Forgets the stored outcome (the FAILURE of the rejection) of dead messages about to be
-- retried, so the new run's outcome is what readers see: PENDING until then.
DELETE FROM results WHERE task_id IN (SELECT task_id FROM dead WHERE :queue IS NULL OR queue = :queue)
