-- Reclaims the space of finished messages, replaced history rows and swept results where
-- the server's autovacuum is off; skips a table another vacuum holds. Also truncates
-- empty pages at a table's end, so a drained queue's table shrinks back.
VACUUM (SKIP_LOCKED) messages, history, results
