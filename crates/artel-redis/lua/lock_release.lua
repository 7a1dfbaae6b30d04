-- Frees a lock or a unique task key, if the caller still holds it (never someone else's).
-- KEYS[1] lock, or unique key
-- ARGV[1] holder token, or task id
-- Returns 1 when freed, 0 when the caller no longer held it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
