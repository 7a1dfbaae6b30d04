-- Stores a result in Celery's format. (Prepended with artel-redis's lua/lib/result.lua.)
-- KEYS[1] celery-task-meta-<id>
-- ARGV[1] result JSON  ARGV[2] ttl ms (0 = keep)
-- Returns 1 when written, 0 when a final result was kept.
return write_result(KEYS[1], ARGV[1], ARGV[2])
