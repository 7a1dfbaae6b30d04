-- Heartbeat: pushes the leases of the given ids forward where the caller still holds them.
-- KEYS[1] leases zset  KEYS[2] holders hash
-- ARGV[1] lease until (ms)  ARGV[2] holder token  ARGV[3..] ids
-- Returns how many leases were extended.
local n = 0
for i = 3, #ARGV do
    if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[2] then
        redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i])
        n = n + 1
    end
end
return n
