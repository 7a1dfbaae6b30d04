-- Makes sure rate limit $1 has a row to lock (a new one admits as no row does).
INSERT INTO rate_limit (key, ready, booked) VALUES ($1, 0, 0) ON CONFLICT (key) DO NOTHING
