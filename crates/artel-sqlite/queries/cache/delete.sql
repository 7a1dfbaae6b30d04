-- Deletes a cached value; a row saying whether it was live, or none.
DELETE FROM cache WHERE key = :key RETURNING expires_at IS NULL OR expires_at > :now;
