-- Forgets a held message (kombu's ack).
-- KEYS[1] unacked HASH  KEYS[2] unacked_index ZSET  KEYS[3] deliveries HASH
-- ARGV[1] delivery tag
-- Returns 1 when it was held, 0 when already gone (restored after its visibility timeout).
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])
