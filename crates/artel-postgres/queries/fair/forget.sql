-- Drops queue $1's groups with no message left; '' too once no group has any, which
-- returns the queue to being claimed without groups. Runs after fair/lock.sql, in its
-- transaction.
DELETE FROM fair_groups f
WHERE f.queue = $1 AND NOT EXISTS (
    SELECT 1 FROM messages m
    WHERE m.queue = $1 AND (m.grp = f.grp AND f.grp <> '' OR f.grp = '' AND m.grp <> '')
)
