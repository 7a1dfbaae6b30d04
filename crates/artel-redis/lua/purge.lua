-- Deletes what waits (pending and scheduled), never what a worker holds.
-- KEYS[1] pending zset  KEYS[2] scheduled zset  KEYS[3] messages hash  KEYS[4] priorities hash
-- Returns the number of messages deleted.
local n = 0
for _, key in ipairs({KEYS[1], KEYS[2]}) do
    local ids = redis.call('ZRANGE', key, 0, -1)
    for _, id in ipairs(ids) do
        redis.call('HDEL', KEYS[3], id)
        redis.call('HDEL', KEYS[4], id)
        n = n + 1
    end
    redis.call('DEL', key)
end
return n
