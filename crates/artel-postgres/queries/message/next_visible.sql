-- When the next message of queue $1 becomes claimable (delayed or leased ones): the
-- earliest visible_at of each group and priority, read off the claim index's head for
-- that group and priority, so it costs one index probe per group and priority in use, not
-- a scan of the queue. The groups are '' (no group) and the queue's fair groups.
WITH RECURSIVE groups AS (
    SELECT '' AS grp
    UNION
    SELECT grp FROM fair_groups WHERE queue = $1
), priorities AS (
    SELECT g.grp, (SELECT m.priority FROM messages m
                   WHERE m.queue = $1 AND m.grp = g.grp
                   ORDER BY m.priority DESC LIMIT 1) AS priority
    FROM groups g
    UNION ALL
    SELECT p.grp, (SELECT m.priority FROM messages m
                   WHERE m.queue = $1 AND m.grp = p.grp AND m.priority < p.priority
                   ORDER BY m.priority DESC LIMIT 1)
    FROM priorities p WHERE p.priority IS NOT NULL
)
SELECT min((SELECT m.visible_at FROM messages m
            WHERE m.queue = $1 AND m.grp = p.grp AND m.priority = p.priority
            ORDER BY m.visible_at LIMIT 1))
FROM priorities p WHERE p.priority IS NOT NULL
