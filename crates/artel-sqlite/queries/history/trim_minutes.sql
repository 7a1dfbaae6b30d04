DELETE FROM minutes WHERE at_ms < :before
