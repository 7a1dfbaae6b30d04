-- Writes a cached value only where none lives (an expired one counts as none); its
-- version, or no row.
INSERT INTO cache (key, value, version, expires_at) VALUES (:key, :value, :now_us, :expires_at)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = max(excluded.version, cache.version + 1),
    expires_at = excluded.expires_at
    WHERE cache.expires_at IS NOT NULL AND cache.expires_at <= :now
RETURNING version;
