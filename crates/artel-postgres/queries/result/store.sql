-- Guarded write: a ready result (final states) is never replaced unless it expired.
-- Keep the list in step with artel_core::State::is_ready (a test checks it).
INSERT INTO results (task_id, state, result, expires_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (task_id) DO UPDATE
SET state = excluded.state, result = excluded.result, expires_at = excluded.expires_at
WHERE results.state NOT IN ('SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED', 'IGNORED')
   OR results.expires_at <= $5
