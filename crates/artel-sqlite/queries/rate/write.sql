-- Stores a rate limit's state after a run asked to start.
INSERT INTO rate_limit (key, ready, booked) VALUES (:key, :ready, :booked)
ON CONFLICT (key) DO UPDATE SET ready = excluded.ready, booked = excluded.booked;
