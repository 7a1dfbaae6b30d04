-- Deletes what is waiting (ready or delayed), never what a worker holds.
DELETE FROM messages WHERE queue = :queue AND (lease_token IS NULL OR visible_at <= :now)
