-- Rate limit $1's state, locked until the transaction ends: when its next run may start,
-- where its booked slots end (unix µs).
SELECT ready, booked FROM rate_limit WHERE key = $1 FOR UPDATE
