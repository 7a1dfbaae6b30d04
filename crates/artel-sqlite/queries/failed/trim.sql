-- Keeps the newest :keep failures of a queue.
DELETE FROM failed
WHERE queue = :queue AND id <= (SELECT id FROM failed WHERE queue = :queue ORDER BY id DESC LIMIT 1 OFFSET :keep)
