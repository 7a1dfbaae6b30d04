-- Deletes cache key $1; a row saying whether it was live at $2 (unix ms), or none.
DELETE FROM cache WHERE key = $1 RETURNING expires_at IS NULL OR expires_at > $2
