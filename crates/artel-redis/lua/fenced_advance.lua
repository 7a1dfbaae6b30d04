-- Stores a value that only grows, written only under the newest fence.
-- KEYS[1] fenced value (hash: fence, value; kept)
-- ARGV[1] writer's fence  ARGV[2] value
-- Returns 1 when stored, 0 when a larger fence wrote before or the value is not larger.
local stored = redis.call('HMGET', KEYS[1], 'fence', 'value')
if stored[1] and (tonumber(ARGV[1]) < tonumber(stored[1]) or tonumber(ARGV[2]) <= tonumber(stored[2])) then
  return 0
end
redis.call('HSET', KEYS[1], 'fence', ARGV[1], 'value', ARGV[2])
return 1
