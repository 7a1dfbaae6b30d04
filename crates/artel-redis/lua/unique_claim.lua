-- Claims a unique task key unless a live claim holds it.
-- KEYS[1] unique key (holder's task id, expiring)
-- ARGV[1] task id  ARGV[2] time to live in ms
-- Returns the holding task's id (ARGV[1] when this call claimed it).
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
