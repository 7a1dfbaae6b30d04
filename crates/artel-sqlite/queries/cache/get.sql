-- A cached value and its version, unless expired.
SELECT value, version FROM cache WHERE key = :key AND (expires_at IS NULL OR expires_at > :now);
