-- Records one chord member; when every member is in, returns all their results.
-- Recording a member again (a redelivery) overwrites its field, so each counts once.
-- KEYS[1] chord hash (member index -> result JSON)
-- ARGV[1] member index  ARGV[2] result JSON  ARGV[3] chord size  ARGV[4] ttl ms (0 = keep)
-- Returns false while members are missing, else HGETALL's flat index, result, ... list.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if tonumber(ARGV[4]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
if redis.call('HLEN', KEYS[1]) < tonumber(ARGV[3]) then
    return false
end
return redis.call('HGETALL', KEYS[1])
