-- Writes cache key $1 = $2, expiring at $3, only over live version $6 (live at $5, unix
-- ms); the new version (above $4, the clock in µs), or no row.
UPDATE cache SET value = $2, version = GREATEST($4, version + 1), expires_at = $3
WHERE key = $1 AND version = $6 AND (expires_at IS NULL OR expires_at > $5)
RETURNING version
