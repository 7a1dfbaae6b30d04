-- Stores a finished task's result and acknowledges its message in one step.
-- The result is written unless a final one is already there (then kept), and announced
-- on the channel named like its key; the ack happens only if the caller still holds
-- the message. Touches the result key too, so under Redis Cluster (another slot) the
-- worker stores and acks separately instead.
-- KEYS[1] leases zset  KEYS[2] messages hash  KEYS[3] priorities hash  KEYS[4] holders hash
-- KEYS[5] result key
-- ARGV[1] id  ARGV[2] holder token  ARGV[3] result JSON  ARGV[4] result ttl ms (0 = keep)
-- Returns {written (1/0), acked (1/0)}.
local written = 0
local current = redis.call('GET', KEYS[5])
local final = false
if current then
    local state = cjson.decode(current)['status']
    final = state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED' or state == 'REJECTED' or state == 'IGNORED'
end
if not final then
    if tonumber(ARGV[4]) > 0 then
        redis.call('SET', KEYS[5], ARGV[3], 'PX', ARGV[4])
    else
        redis.call('SET', KEYS[5], ARGV[3])
    end
    redis.call('PUBLISH', KEYS[5], ARGV[3])
    written = 1
end
local acked = 0
if redis.call('HGET', KEYS[4], ARGV[1]) == ARGV[2] then
    redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('HDEL', KEYS[2], ARGV[1])
    redis.call('HDEL', KEYS[3], ARGV[1])
    redis.call('HDEL', KEYS[4], ARGV[1])
    acked = 1
end
return {written, acked}
