-- Keeps the newest $2 failures of queue $1.
DELETE FROM failed
WHERE queue = $1 AND id <= (SELECT id FROM failed WHERE queue = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)
