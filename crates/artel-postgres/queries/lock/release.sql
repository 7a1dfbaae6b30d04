-- Frees lock $1 if token $2 still holds it; the fence is kept.
UPDATE lock SET token = NULL, expires_at = 0 WHERE key = $1 AND token = $2
