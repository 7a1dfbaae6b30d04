-- Puts dead messages back on their queues, ready now.
INSERT INTO messages (queue, priority, visible_at, task_id, envelope)
SELECT queue, 0, :now, task_id, envelope FROM dead WHERE :queue IS NULL OR queue = :queue ORDER BY id
