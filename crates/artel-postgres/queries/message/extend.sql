-- Heartbeat: keeps every message this holder ($1) has leased until $2.
UPDATE messages SET visible_at = $2 WHERE lease_token = $1
