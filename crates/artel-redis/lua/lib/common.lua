-- Shared helpers, prepended to the scripts that need them when they are loaded.

-- Writes result JSON under `key` unless a final result is already there, and announces
-- it on the channel named like the key. Keep the final states in step with
-- artel_core::State::is_ready (a test checks it). Returns 1 when written, 0 when kept.
local function write_result(key, json, ttl_ms)
    local current = redis.call('GET', key)
    if current then
        local state = cjson.decode(current)['status']
        if state == 'SUCCESS' or state == 'FAILURE' or state == 'REVOKED' or state == 'REJECTED' or state == 'IGNORED' then
            return 0
        end
    end
    if tonumber(ttl_ms) > 0 then
        redis.call('SET', key, json, 'PX', ttl_ms)
    else
        redis.call('SET', key, json)
    end
    redis.call('PUBLISH', key, json)
    return 1
end

-- Forgets a held message entirely if `token` still holds it. Returns 1 when it did.
local function drop_held(leases, messages, priorities, holders, id, token)
    if redis.call('HGET', holders, id) ~= token then return 0 end
    redis.call('ZREM', leases, id)
    redis.call('HDEL', messages, id)
    redis.call('HDEL', priorities, id)
    redis.call('HDEL', holders, id)
    return 1
end
