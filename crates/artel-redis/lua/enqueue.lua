-- Stores messages and makes them pending (or scheduled, when their ETA is ahead).
-- KEYS[1] pending zset   KEYS[2] scheduled zset   KEYS[3] messages hash
-- KEYS[4] priorities hash  KEYS[5] sequence counter  KEYS[6] signal list
-- ARGV[1] now (ms), then per message: message id (unique per publish), priority (0-9),
-- visible_at (ms), envelope
-- Returns the number of messages stored.
local now = tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV, 4 do
    local id, priority, visible_at, envelope = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
    redis.call('HSET', KEYS[3], id, envelope)
    redis.call('HSET', KEYS[4], id, priority)
    if visible_at > now then
        redis.call('ZADD', KEYS[2], visible_at, id)
    else
        local seq = redis.call('INCR', KEYS[5])
        redis.call('ZADD', KEYS[1], (9 - priority) * 1e13 + seq, id)
    end
    n = n + 1
end
redis.call('LPUSH', KEYS[6], 1)
redis.call('LTRIM', KEYS[6], 0, 0)
return n
