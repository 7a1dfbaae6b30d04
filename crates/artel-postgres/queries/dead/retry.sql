-- Puts dead messages back on their queues, ready now, in the order they died.
WITH moved AS (
    DELETE FROM dead WHERE $1::text IS NULL OR queue = $1
    RETURNING id, queue, task_id, envelope
)
INSERT INTO messages (queue, priority, visible_at, task_id, envelope)
SELECT queue, 0, $2, task_id, envelope FROM moved ORDER BY id
