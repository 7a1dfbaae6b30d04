SELECT at_ms, succeeded, failed FROM minutes WHERE at_ms >= :since ORDER BY at_ms
