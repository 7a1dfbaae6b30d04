-- Deletes every cache key starting with $1; a row per value, saying whether it was live
-- at $2 (unix ms).
DELETE FROM cache WHERE starts_with(key, $1) RETURNING expires_at IS NULL OR expires_at > $2
