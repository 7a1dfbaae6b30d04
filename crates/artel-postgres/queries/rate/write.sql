-- Stores rate limit $1's state after a run asked to start.
INSERT INTO rate_limit (key, ready, booked) VALUES ($1, $2, $3)
ON CONFLICT (key) DO UPDATE SET ready = excluded.ready, booked = excluded.booked
