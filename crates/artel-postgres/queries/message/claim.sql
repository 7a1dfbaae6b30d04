-- Leases up to $5 visible messages of queue $1 for holder $4 until $3, highest priority
-- first, then oldest; rows another claim has locked are skipped, not waited for.
WITH picked AS (
    SELECT id, priority, visible_at FROM messages
    WHERE queue = $1 AND visible_at <= $2
    ORDER BY priority DESC, visible_at, id
    LIMIT $5
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE messages m
    SET visible_at = $3, lease_token = $4, deliveries = m.deliveries + 1
    FROM picked
    WHERE m.id = picked.id
    RETURNING m.id, m.envelope, m.deliveries, picked.priority, picked.visible_at AS was_visible_at
)
SELECT id, envelope, deliveries FROM leased ORDER BY priority DESC, was_visible_at, id
