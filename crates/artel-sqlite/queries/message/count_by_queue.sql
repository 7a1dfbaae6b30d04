-- Per queue: ready, delayed (not yet due, never claimed), leased (held by a worker).
SELECT queue,
       sum(lease_token IS NULL AND visible_at <= :now),
       sum(lease_token IS NULL AND visible_at > :now),
       sum(lease_token IS NOT NULL AND visible_at > :now)
FROM messages GROUP BY queue ORDER BY queue
