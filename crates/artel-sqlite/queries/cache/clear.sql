-- Deletes every cached value whose key starts with :prefix; a row per value, saying
-- whether it was live.
DELETE FROM cache WHERE substr(key, 1, length(:prefix)) = :prefix
RETURNING expires_at IS NULL OR expires_at > :now;
