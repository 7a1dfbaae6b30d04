-- Records a worker's heartbeat and stats; returns whether a stop was asked of it (and
-- takes the request).
INSERT INTO workers AS w (name, heartbeat_at, stats) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stats = excluded.stats, stop_requested = false
RETURNING (SELECT stop_requested FROM workers WHERE name = $1)
