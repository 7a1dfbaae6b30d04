-- Takes a lock when free or lapsed, handing out the next fence; no row when held.
INSERT INTO lock (key, token, expires_at, fence) VALUES (:key, :token, :expires_at, 1)
ON CONFLICT (key) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at, fence = lock.fence + 1
    WHERE lock.token IS NULL OR lock.expires_at <= :now
RETURNING fence;
