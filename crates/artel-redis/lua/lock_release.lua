-- Frees a lock, if the caller still holds it (never someone else's).
-- KEYS[1] lock
-- ARGV[1] holder token
-- Returns 1 when freed, 0 when the caller no longer held it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
