-- Forgets the limits with nothing ahead of them since :since_us: such a row admits as no
-- row does.
DELETE FROM rate_limit WHERE ready <= :since_us AND booked <= :since_us;
