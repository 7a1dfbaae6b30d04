-- Stores finished tasks' results and removes their messages, many in one statement.
-- Row i: task $1[i] ended in state $2[i] with JSON $3[i], kept until $4[i] (NULL: kept);
-- its message $5[i] is removed only if holder $6[i] still holds it. A final result is
-- never replaced (as in result/store.sql; $7 is now). Task ids are distinct. When a
-- result was written, one notification on channel $8 naming the written tasks wakes the
-- result waiters and watches of every process at commit. Returns (message id, written,
-- acked) per row.
WITH input AS (
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::bigint[], $5::bigint[], $6::text[])
        AS i(task_id, state, result, expires_at, message_id, holder)
), stored AS (
    INSERT INTO results (task_id, state, result, expires_at)
    SELECT task_id, state, result, expires_at FROM input ORDER BY task_id
    ON CONFLICT (task_id) DO UPDATE
    SET state = excluded.state, result = excluded.result, expires_at = excluded.expires_at
    WHERE results.state NOT IN ('SUCCESS', 'FAILURE', 'REVOKED', 'REJECTED', 'IGNORED')
       OR results.expires_at <= $7
    RETURNING task_id
), acked AS (
    -- By primary key (a join on the holder would read every message it holds, for
    -- each row); row i's holder is found by its message's place in $5.
    DELETE FROM messages m
    WHERE m.id = ANY($5::bigint[]) AND m.lease_token = ($6::text[])[array_position($5::bigint[], m.id)]
    RETURNING m.id
), notified AS (
    -- Names the stored tasks, one per line, where they fit in a payload (8000 bytes).
    SELECT pg_notify($8, CASE WHEN octet_length(ids) < 8000 THEN ids ELSE '' END)
    FROM (SELECT string_agg(task_id, E'\n') AS ids FROM stored) AS batch
    WHERE ids IS NOT NULL
)
SELECT i.message_id, s.task_id IS NOT NULL, a.id IS NOT NULL
FROM input i
LEFT JOIN stored s ON s.task_id = i.task_id
LEFT JOIN acked a ON a.id = i.message_id
CROSS JOIN (SELECT count(*) FROM notified) AS once
