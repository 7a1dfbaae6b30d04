SELECT at_ms, succeeded, failed FROM minutes WHERE at_ms >= $1 ORDER BY at_ms
