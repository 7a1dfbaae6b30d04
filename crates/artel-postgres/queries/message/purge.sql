-- Deletes what is waiting (ready or delayed), never what a worker holds.
DELETE FROM messages WHERE queue = $1 AND (lease_token IS NULL OR visible_at <= $2)
