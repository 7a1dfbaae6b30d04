-- Removes and returns the failures of the task ids $1 (all when NULL), oldest first:
-- (queue, envelope).
WITH taken AS (
    DELETE FROM failed WHERE $1::text[] IS NULL OR task_id = ANY($1)
    RETURNING id, queue, envelope
)
SELECT queue, envelope FROM taken ORDER BY id
