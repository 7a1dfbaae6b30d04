-- Forgets the values expired at $1 (unix ms; every so often, as values are written).
DELETE FROM cache WHERE expires_at <= $1
