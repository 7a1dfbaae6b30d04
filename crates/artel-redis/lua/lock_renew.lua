-- Extends a lock's lease, if the caller still holds it.
-- KEYS[1] lock
-- ARGV[1] holder token  ARGV[2] lease in ms
-- Returns 1 when extended, 0 when the lease was lost (expired, or taken since).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
