-- Heartbeat: keeps every message this holder has leased.
UPDATE messages SET visible_at = :lease_until WHERE lease_token = :token
