-- Leases up to :limit visible messages of a queue with groups: at most :per_group of each
-- group (its highest priority, then oldest), the groups served longest ago first.
UPDATE messages
SET visible_at = :lease_until, lease_token = :token, deliveries = deliveries + 1
WHERE id IN (
    SELECT m.id FROM fair_groups g JOIN messages m ON m.id IN (
        SELECT id FROM messages
        WHERE queue = g.queue AND grp = g.grp AND visible_at <= :now
        ORDER BY priority DESC, visible_at, id
        LIMIT :per_group
    )
    WHERE g.queue = :queue
    ORDER BY g.served, g.grp
    LIMIT :limit
)
RETURNING id, envelope, deliveries, grp
