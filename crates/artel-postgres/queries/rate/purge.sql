-- Forgets the limits with nothing ahead of them since $1 (unix µs), skipping any a run is
-- asking about: such a row admits as no row does.
DELETE FROM rate_limit WHERE key IN (
    SELECT key FROM rate_limit WHERE ready <= $1 AND booked <= $1 FOR UPDATE SKIP LOCKED
)
