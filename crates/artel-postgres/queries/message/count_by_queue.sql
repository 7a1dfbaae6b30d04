-- Per queue: ready, delayed (not yet due, never claimed), leased (held by a worker).
SELECT queue,
       count(*) FILTER (WHERE lease_token IS NULL AND visible_at <= $1),
       count(*) FILTER (WHERE lease_token IS NULL AND visible_at > $1),
       count(*) FILTER (WHERE lease_token IS NOT NULL AND visible_at > $1)
FROM messages GROUP BY queue ORDER BY queue
