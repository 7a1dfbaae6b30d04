-- Gives a held message back: pending at once, for anyone. The delivery it undoes does not
-- count towards max deliveries (handed back, not lost with its worker). (Prepended with
-- lib/common.lua.)
-- KEYS[1] pending zset  KEYS[2] leases zset  KEYS[3] priorities hash (priority + 10 x
-- deliveries)  KEYS[4] holders hash  KEYS[5] sequence  KEYS[6] signal list
-- ARGV[1] id  ARGV[2] holder token
-- Returns 1 when released, 0 when the caller no longer held it.
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
local priority = add_deliveries(KEYS[3], ARGV[1], -10) % 10
local seq = redis.call('INCR', KEYS[5])
redis.call('ZADD', KEYS[1], (9 - priority) * 1e13 + seq, ARGV[1])
redis.call('LPUSH', KEYS[6], 1)
redis.call('LTRIM', KEYS[6], 0, 0)
return 1
