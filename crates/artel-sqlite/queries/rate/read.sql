-- A rate limit's state: when its next run may start, where its booked slots end (µs).
SELECT ready, booked FROM rate_limit WHERE key = :key;
