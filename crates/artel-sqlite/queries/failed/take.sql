-- Removes and returns the failures of the task ids in the JSON array :ids (all when
-- NULL), oldest first: (queue, envelope).
DELETE FROM failed
WHERE :ids IS NULL OR task_id IN (SELECT value FROM json_each(:ids))
RETURNING id, queue, envelope
