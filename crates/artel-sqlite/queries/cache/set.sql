-- Writes a cached value whatever is there; its new version.
INSERT INTO cache (key, value, version, expires_at) VALUES (:key, :value, :now_us, :expires_at)
ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = max(excluded.version, cache.version + 1),
    expires_at = excluded.expires_at
RETURNING version;
