-- Takes a lock when it is free, and hands out the next fencing token.
-- KEYS[1] lock (holder token, expiring)  KEYS[2] fence counter (kept)
-- ARGV[1] holder token  ARGV[2] lease in ms
-- Returns the new fence (> 0), or 0 when someone else holds the lock.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0
