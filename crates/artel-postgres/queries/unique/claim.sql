-- Claims unique key $1 for task $2 until $4 unless another task's claim is live at $3;
-- returns the holder either way.
WITH claimed AS (
    INSERT INTO unique_key (key, task_id, expires_at) VALUES ($1, $2, $4)
    ON CONFLICT (key) DO UPDATE SET task_id = excluded.task_id, expires_at = excluded.expires_at
        WHERE unique_key.expires_at <= $3
    RETURNING task_id
)
SELECT task_id FROM claimed
UNION ALL
SELECT task_id FROM unique_key WHERE key = $1 AND NOT EXISTS (SELECT 1 FROM claimed)
