-- Stores messages and makes them pending (or scheduled, when their ETA is ahead), with
-- one command per key for the whole batch. (Prepended with lib/common.lua.)
-- KEYS[1] pending zset   KEYS[2] scheduled zset   KEYS[3] messages hash
-- KEYS[4] priorities hash  KEYS[5] sequence counter  KEYS[6] signal list
-- ARGV[1] now (ms), then per message: message id (unique per publish), priority (0-9),
-- visible_at (ms), envelope
-- Returns the number of messages stored.
local now = tonumber(ARGV[1])
local ready = 0
for i = 2, #ARGV, 4 do
    if tonumber(ARGV[i + 2]) <= now then ready = ready + 1 end
end
-- The sequence numbers of the ready ones, drawn at once: they order equal priorities.
local seq = 0
if ready > 0 then seq = redis.call('INCRBY', KEYS[5], ready) - ready end
local envelopes, priorities, scheduled, pending = {}, {}, {}, {}
for i = 2, #ARGV, 4 do
    local id, priority, visible_at, envelope = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
    envelopes[#envelopes + 1] = id
    envelopes[#envelopes + 1] = envelope
    priorities[#priorities + 1] = id
    priorities[#priorities + 1] = priority
    if visible_at > now then
        scheduled[#scheduled + 1] = visible_at
        scheduled[#scheduled + 1] = id
    else
        seq = seq + 1
        pending[#pending + 1] = (9 - priority) * 1e13 + seq
        pending[#pending + 1] = id
    end
end
bulk('HSET', KEYS[3], envelopes)
bulk('HSET', KEYS[4], priorities)
bulk('ZADD', KEYS[2], scheduled)
bulk('ZADD', KEYS[1], pending)
redis.call('LPUSH', KEYS[6], 1)
redis.call('LTRIM', KEYS[6], 0, 0)
return (#ARGV - 1) / 4
