-- Stores a finished task's result ($2 state, $3 JSON, $4 expiry; guarded as in
-- result/store.sql) and removes its message ($6, if holder $7 still holds it) in one
-- statement. Returns (written, acked).
WITH stored AS (
    INSERT INTO results (task_id, state, result, expires_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (task_id) DO UPDATE
    SET state = excluded.state, result = excluded.result, expires_at = excluded.expires_at
    WHERE results.state NOT IN ('SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED', 'IGNORED')
       OR results.expires_at <= $5
    RETURNING 1
), acked AS (
    DELETE FROM messages WHERE id = $6 AND lease_token = $7
    RETURNING 1
)
SELECT (SELECT count(*) FROM stored) = 1, (SELECT count(*) FROM acked) = 1
