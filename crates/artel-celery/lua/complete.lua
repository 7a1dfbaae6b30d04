-- Stores a task's result and forgets its held message, in one step, so a result is never
-- stored without the ack or acked without the result. (Prepended with artel-redis's lua/lib/result.lua.)
-- KEYS[1] celery-task-meta-<id>  KEYS[2] unacked HASH  KEYS[3] unacked_index ZSET
-- KEYS[4] deliveries HASH
-- ARGV[1] result JSON  ARGV[2] ttl ms (0 = keep)  ARGV[3] delivery tag
-- Returns 1 when the result was written, 0 when a final result was kept.
local written = write_result(KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[3])
return written
