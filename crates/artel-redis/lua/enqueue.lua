-- Stores messages and makes them pending (or scheduled, when their ETA is ahead), with
-- one command per key for the whole batch. (Prepended with lib/common.lua.)
-- A ready message's turn orders it within its priority: a message without a group takes
-- the queue's next turn (FIFO); one with a group takes its group's next turn, and a group
-- with nothing ahead starts at the clock (the newest turn claimed). So groups are served
-- round-robin: a new group's first message goes right behind what is being served, not
-- behind another group's backlog.
-- KEYS[1] pending zset   KEYS[2] scheduled zset   KEYS[3] messages hash
-- KEYS[4] priorities hash  KEYS[5] sequence (last ungrouped turn)  KEYS[6] signal list
-- KEYS[7] turns hash (group -> last turn)  KEYS[8] clock
-- ARGV[1] now (ms), then per message: message id (unique per publish), priority (0-9),
-- visible_at (ms), envelope, group ('' for none)
-- Returns the number of messages stored.
local now = tonumber(ARGV[1])
local clock = tonumber(redis.call('GET', KEYS[8]) or '0')
-- The last turn of each group this batch touches ('' the ungrouped), read once.
local last = {}
local function turn(group)
    if last[group] == nil then
        local stored
        if group == '' then
            stored = redis.call('GET', KEYS[5])
        else
            stored = redis.call('HGET', KEYS[7], group)
        end
        last[group] = math.max(tonumber(stored or '0'), clock)
    end
    last[group] = last[group] + 1
    return last[group]
end
local envelopes, priorities, scheduled, pending = {}, {}, {}, {}
for i = 2, #ARGV, 5 do
    local id, priority, visible_at, envelope = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
    envelopes[#envelopes + 1] = id
    envelopes[#envelopes + 1] = envelope
    priorities[#priorities + 1] = id
    priorities[#priorities + 1] = priority
    if visible_at > now then
        scheduled[#scheduled + 1] = visible_at
        scheduled[#scheduled + 1] = id
    else
        pending[#pending + 1] = (9 - priority) * 1e13 + turn(ARGV[i + 4])
        pending[#pending + 1] = id
    end
end
local grouped = {}
for group, value in pairs(last) do
    if group == '' then
        redis.call('SET', KEYS[5], string.format('%.0f', value))
    else
        grouped[#grouped + 1] = group
        grouped[#grouped + 1] = string.format('%.0f', value)
    end
end
bulk('HSET', KEYS[7], grouped)
bulk('HSET', KEYS[3], envelopes)
bulk('HSET', KEYS[4], priorities)
bulk('ZADD', KEYS[2], scheduled)
bulk('ZADD', KEYS[1], pending)
redis.call('LPUSH', KEYS[6], 1)
redis.call('LTRIM', KEYS[6], 0, 0)
return (#ARGV - 1) / 5
