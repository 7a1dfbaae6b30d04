INSERT INTO minutes (at_ms, succeeded, failed) VALUES ($1, $2, $3)
ON CONFLICT (at_ms) DO UPDATE
SET succeeded = minutes.succeeded + excluded.succeeded, failed = minutes.failed + excluded.failed
