INSERT INTO minutes (at_ms, succeeded, failed) VALUES (:at_ms, :succeeded, :failed)
ON CONFLICT (at_ms) DO UPDATE
SET succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed
