-- Writes cache key $1 = $2, expiring at $3, only where no value lives at $5 (unix ms; an
-- expired one counts as none); the version (above $4, the clock in µs), or no row.
INSERT INTO cache (key, value, version, expires_at) VALUES ($1, $2, $4, $3)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = GREATEST(excluded.version, cache.version + 1),
    expires_at = excluded.expires_at
    WHERE cache.expires_at IS NOT NULL AND cache.expires_at <= $5
RETURNING version
