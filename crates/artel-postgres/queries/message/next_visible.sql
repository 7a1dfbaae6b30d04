-- When the next message of queue $1 becomes claimable (delayed or leased ones): the
-- earliest visible_at of each priority, read off the claim index's head for that
-- priority, so it costs one index probe per priority in use, not a scan of the queue.
WITH RECURSIVE priorities AS (
    (SELECT priority FROM messages WHERE queue = $1 ORDER BY priority DESC LIMIT 1)
    UNION ALL
    SELECT (SELECT m.priority FROM messages m
            WHERE m.queue = $1 AND m.priority < p.priority
            ORDER BY m.priority DESC LIMIT 1)
    FROM priorities p WHERE p.priority IS NOT NULL
)
SELECT min((SELECT m.visible_at FROM messages m
            WHERE m.queue = $1 AND m.priority = p.priority
            ORDER BY m.visible_at LIMIT 1))
FROM priorities p WHERE p.priority IS NOT NULL
