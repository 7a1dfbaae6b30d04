-- Leases up to :limit visible messages of one queue without groups, highest priority
-- first, then oldest.
UPDATE messages
SET visible_at = :lease_until, lease_token = :token, deliveries = deliveries + 1
WHERE id IN (
    SELECT id FROM messages
    WHERE queue = :queue AND grp = '' AND visible_at <= :now
    ORDER BY priority DESC, visible_at, id
    LIMIT :limit
)
RETURNING id, envelope, deliveries, grp
