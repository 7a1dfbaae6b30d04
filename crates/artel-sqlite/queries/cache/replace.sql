-- Writes a cached value only over the live version its writer read; the new version, or
-- no row.
UPDATE cache SET value = :value, version = max(:now_us, version + 1), expires_at = :expires_at
WHERE key = :key AND version = :expected AND (expires_at IS NULL OR expires_at > :now)
RETURNING version;
