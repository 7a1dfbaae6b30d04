-- Frees a lock if the caller still holds it; the fence is kept.
UPDATE lock SET token = NULL, expires_at = 0 WHERE key = :key AND token = :token;
