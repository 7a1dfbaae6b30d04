-- Stores a result in Celery's format unless a final one is there, and announces it on
-- the channel named like the key (what Python's AsyncResult.get() listens to).
-- KEYS[1] celery-task-meta-<id>
-- ARGV[1] result JSON  ARGV[2] ttl ms (0 = keep)
-- Returns 1 when written, 0 when a final result was kept.
local current = redis.call('GET', KEYS[1])
if current then
    local ok, stored = pcall(cjson.decode, current)
    local state = ok and type(stored) == 'table' and stored['status']
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
