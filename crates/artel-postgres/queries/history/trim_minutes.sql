DELETE FROM minutes WHERE at_ms < $1
