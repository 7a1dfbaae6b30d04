-- Writes result JSON under `key` unless a final result is already there, and announces
-- it on the channel named like the key (what artel's and Python's waiters listen to).
-- Keep the final states in step with artel_core::State::is_ready (a test checks it).
-- Returns 1 when written, 0 when kept. Shared with artel-celery (toolkit::RESULT_LUA).
local function write_result(key, json, ttl_ms)
    local current = redis.call('GET', key)
    if current then
        local ok, stored = pcall(cjson.decode, current)
        local state = ok and type(stored) == 'table' and stored['status']
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

