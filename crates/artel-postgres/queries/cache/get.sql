-- The value and version of cache key $1, unless expired at $2 (unix ms).
SELECT value, version FROM cache WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)
