-- Leases up to $5 visible messages of queue $1 for holder $4 until $3; rows another claim
-- has locked are skipped, not waited for. Without groups: highest priority first, then
-- oldest. With groups (fair_groups): a share of each group's (its highest priority, then
-- oldest), the group served longest ago first; each group served is marked at $6 (µs).
WITH shares AS (
    SELECT grp, served, count(*) OVER () AS groups FROM fair_groups WHERE queue = $1
), rotation AS (
    SELECT grp, served, GREATEST(1, ceil($5::float8 / groups))::bigint AS share FROM shares
    UNION ALL
    SELECT '', 0, $5::bigint WHERE NOT EXISTS (SELECT 1 FROM shares)
), picked AS (
    SELECT m.id, m.priority, m.visible_at, g.grp, g.served FROM rotation g
    CROSS JOIN LATERAL (
        SELECT id, priority, visible_at FROM messages
        WHERE queue = $1 AND grp = g.grp AND visible_at <= $2
        ORDER BY priority DESC, visible_at, id
        LIMIT g.share
        FOR UPDATE SKIP LOCKED
    ) m
    ORDER BY g.served, g.grp, m.priority DESC, m.visible_at, m.id
    LIMIT $5
), leased AS (
    -- By primary key whatever the planner thinks of the table (a join could scan it).
    UPDATE messages m
    SET visible_at = $3, lease_token = $4, deliveries = m.deliveries + 1
    WHERE m.id = ANY (ARRAY(SELECT id FROM picked))
    RETURNING m.id, m.envelope, m.deliveries, m.grp
), served AS (
    UPDATE fair_groups SET served = $6 WHERE queue = $1 AND grp IN (SELECT grp FROM leased)
)
SELECT l.id, l.envelope, l.deliveries FROM leased l JOIN picked p ON p.id = l.id
ORDER BY p.served, p.grp, p.priority DESC, p.visible_at, p.id
