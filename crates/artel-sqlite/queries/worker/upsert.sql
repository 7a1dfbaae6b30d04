INSERT INTO workers (name, heartbeat_at, stats) VALUES (:name, :now, :stats)
ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stats = excluded.stats
