-- Moves a held message to the dead list, with the reason and the envelope (for retry).
-- KEYS[1] leases zset  KEYS[2] messages hash  KEYS[3] priorities hash  KEYS[4] holders hash
-- KEYS[5] dead list
-- ARGV[1] id  ARGV[2] holder token  ARGV[3] dead entry JSON (id, reason, died_at_ms)
-- Returns 1 when moved, 0 when the caller no longer held it.
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
local entry = cjson.decode(ARGV[3])
entry['envelope'] = redis.call('HGET', KEYS[2], ARGV[1]) or ''
redis.call('RPUSH', KEYS[5], cjson.encode(entry))
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
