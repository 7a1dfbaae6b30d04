-- Forgets expired values (every so often, as values are written).
DELETE FROM cache WHERE expires_at <= :now;
