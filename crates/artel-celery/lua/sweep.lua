-- Restores messages held past the visibility timeout (their consumer is gone) to the
-- front of their lists, under kombu's restore mutex so one consumer does it at a time,
-- moving each envelope's original bytes; an entry that cannot be read goes to the dead
-- list instead of stopping every later sweep. (Prepended with lib/held.lua.)
-- Lists are named from each message's routing key and priority (not Cluster-safe, like kombu).
-- KEYS[1] unacked HASH  KEYS[2] unacked_index ZSET  KEYS[3] unacked_mutex  KEYS[4] dead LIST
-- ARGV[1] taken before this (unix seconds) counts as abandoned  ARGV[2] mutex token
-- ARGV[3] mutex ttl ms  ARGV[4] key prefix  ARGV[5] most to restore
-- Returns how many were restored, or -1 when another consumer holds the mutex.
if not redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then
    return -1
end
local tags = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[5]))
for _, tag in ipairs(tags) do
    local held = redis.call('HGET', KEYS[1], tag)
    if held then
        local envelope, routing_key = split_held(held)
        if envelope then
            local priority = envelope_priority(envelope)
            local list = ARGV[4] .. routing_key
            for _, step in ipairs({9, 6, 3}) do
                if priority >= step then
                    list = list .. '\6\22' .. step
                    break
                end
            end
            redis.call('RPUSH', list, envelope)
        else
            push_dead(KEYS[4], '', 'a held entry that is not [envelope, exchange, routing_key]', held)
        end
    end
    redis.call('HDEL', KEYS[1], tag)
    redis.call('ZREM', KEYS[2], tag)
end
if redis.call('GET', KEYS[3]) == ARGV[2] then
    redis.call('DEL', KEYS[3])
end
return #tags
