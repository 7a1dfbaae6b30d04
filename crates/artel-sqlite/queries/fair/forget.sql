-- Drops the groups with no message left; '' too once no group has any, which returns the
-- queue to being claimed without groups.
DELETE FROM fair_groups
WHERE queue = :queue AND NOT EXISTS (
    SELECT 1 FROM messages m
    WHERE m.queue = :queue AND (m.grp = fair_groups.grp AND fair_groups.grp <> '' OR fair_groups.grp = '' AND m.grp <> '')
)
