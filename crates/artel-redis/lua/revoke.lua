-- Appends a revocation to the log workers poll, keeping only the newest entries.
-- KEYS[1] log ZSET (revocation JSON scored by sequence)  KEYS[2] sequence counter
-- ARGV[1] revocation JSON  ARGV[2] entries to keep
-- Returns the revocation's sequence number.
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], seq, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[2]) - 1)
return seq
