-- Acknowledges a held message whose task failed for good and records the failure, with
-- the envelope for `artel failed retry`, keeping the queue's newest ARGV[6] failures.
-- (Prepended with lib/common.lua.)
-- KEYS[1] leases zset  KEYS[2] messages hash  KEYS[3] priorities hash  KEYS[4] holders hash
-- KEYS[5] failed zset (task id -> failed at ms)  KEYS[6] failed entries hash (task id ->
-- failure JSON)  KEYS[7] failed envelopes hash
-- ARGV[1] id  ARGV[2] holder token  ARGV[3] task id  ARGV[4] failure JSON
-- ARGV[5] failed at (ms)  ARGV[6] failures kept
-- Returns 1 when recorded and acknowledged, 0 when the caller no longer held it.
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[7], ARGV[3], redis.call('HGET', KEYS[2], ARGV[1]) or '')
redis.call('HSET', KEYS[6], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[3])
local extra = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[6])
if extra > 0 then
    local oldest = redis.call('ZPOPMIN', KEYS[5], extra)
    for i = 1, #oldest, 2 do
        redis.call('HDEL', KEYS[6], oldest[i])
        redis.call('HDEL', KEYS[7], oldest[i])
    end
end
return drop_held(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
