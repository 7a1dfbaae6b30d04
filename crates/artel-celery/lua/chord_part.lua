-- Records one chord member the way Celery 5.7 does (docs/wire-format.md §d.6) and, when every member
-- is in, claims the right to call the body and returns all members.
-- KEYS[1] G.j ZSET  KEYS[2] G.t  KEYS[3] G.s  KEYS[4] G.d SET  KEYS[5] G.c
-- ARGV[1] task id  ARGV[2] group index  ARGV[3] member JSON [1, id, state, result]
-- ARGV[4] size (0: read G.s)  ARGV[5] ttl ms  ARGV[6] claim token  ARGV[7] claim ms
-- Returns false while members are missing (or the body was already called), else the
-- members' JSON in index order.
if redis.call('GET', KEYS[5]) == 'done' then
    return false
end
local counted = ARGV[1] .. ':' .. ARGV[2]
if redis.call('SISMEMBER', KEYS[4], counted) == 0 then
    redis.call('ZADD', KEYS[1], tonumber(ARGV[2]), ARGV[3])
    redis.call('SADD', KEYS[4], counted)
end
if tonumber(ARGV[5]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
    redis.call('PEXPIRE', KEYS[4], ARGV[5])
end
local size = tonumber(ARGV[4])
if size == 0 then
    size = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
end
local correction = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if size == 0 or redis.call('ZCARD', KEYS[1]) < size + correction then
    return false
end
if not redis.call('SET', KEYS[5], ARGV[6], 'NX', 'PX', ARGV[7]) then
    return false
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
