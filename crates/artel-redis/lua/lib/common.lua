-- Shared helpers, prepended to the scripts that need them when they are loaded.

-- Forgets a held message entirely if `token` still holds it. Returns 1 when it did.
local function drop_held(leases, messages, priorities, holders, id, token)
    if redis.call('HGET', holders, id) ~= token then return 0 end
    redis.call('ZREM', leases, id)
    redis.call('HDEL', messages, id)
    redis.call('HDEL', priorities, id)
    redis.call('HDEL', holders, id)
    return 1
end
