-- Deletes a message its holder has finished, unless the holder lost the lease.
-- KEYS[1] leases zset  KEYS[2] messages hash  KEYS[3] priorities hash  KEYS[4] holders hash
-- ARGV[1] id  ARGV[2] holder token
-- Returns 1 when deleted, 0 when the caller no longer held it.
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
