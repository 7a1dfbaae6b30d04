-- Writes cache key $1 = $2, expiring at $3 (unix ms, NULL: never), whatever is there; the
-- new version, above the last one and $4 (the clock in µs).
INSERT INTO cache (key, value, version, expires_at) VALUES ($1, $2, $4, $3)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = GREATEST(excluded.version, cache.version + 1),
    expires_at = excluded.expires_at
RETURNING version
