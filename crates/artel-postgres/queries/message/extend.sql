-- Heartbeat: keeps the messages $3 that holder $1 still holds until $2. Rows locked
-- elsewhere are skipped, not waited for: they are being completed (or were taken after
-- a lapse), and waiting on a batch of completions could deadlock with it.
UPDATE messages SET visible_at = $2
WHERE id IN (SELECT id FROM messages WHERE id = ANY($3) AND lease_token = $1 FOR UPDATE SKIP LOCKED)
