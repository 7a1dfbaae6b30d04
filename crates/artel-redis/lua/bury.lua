-- Moves a held message to the dead list, with the reason and the envelope (for retry).
-- (Prepended with lib/common.lua.)
-- KEYS[1] leases zset  KEYS[2] messages hash  KEYS[3] priorities hash  KEYS[4] holders hash
-- KEYS[5] dead list
-- ARGV[1] id  ARGV[2] holder token  ARGV[3] dead entry JSON (id, reason, died_at_ms)
-- Returns 1 when moved, 0 when the caller no longer held it.
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
local entry = cjson.decode(ARGV[3])
entry['envelope'] = redis.call('HGET', KEYS[2], ARGV[1]) or ''
redis.call('RPUSH', KEYS[5], cjson.encode(entry))
return drop_held(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
