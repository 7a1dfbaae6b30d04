-- Stores a result unless a final one is already there, and announces it on the
-- channel named like the key.
-- KEYS[1] result key
-- ARGV[1] result JSON (with a "status" field)  ARGV[2] ttl ms (0 = keep)
-- Returns 1 when written, 0 when a final result was kept.
local current = redis.call('GET', KEYS[1])
if current then
    local state = cjson.decode(current)['status']
    if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED' or state == 'REJECTED' or state == 'IGNORED' then
        return 0
    end
end
if tonumber(ARGV[2]) > 0 then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
    redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
