SELECT name, heartbeat_at, stats FROM workers ORDER BY name
