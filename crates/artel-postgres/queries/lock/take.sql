-- Takes lock $1 for token $2 until $4 when free or lapsed (at $3), handing out the next
-- fence; no row when held.
INSERT INTO lock (key, token, expires_at, fence) VALUES ($1, $2, $4, 1)
ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at, fence = lock.fence + 1
    WHERE lock.token IS NULL OR lock.expires_at <= $3
RETURNING fence
