-- Leases up to ARGV[3] messages: first moves due scheduled messages and lapsed leases
-- back to pending (so a dead worker's messages come back without a separate recoverer),
-- then pops the best pending ones (higher priority, then older). (Prepended with
-- lib/common.lua.)
-- KEYS[1] pending zset   KEYS[2] scheduled zset   KEYS[3] leases zset
-- KEYS[4] messages hash  KEYS[5] priorities hash (priority + 10 x deliveries not handed
-- back: one field keeps both, so counting costs one command)  KEYS[6] holders hash
-- KEYS[7] sequence (last ungrouped turn)  KEYS[8] clock (the newest turn claimed: see
-- enqueue.lua)
-- ARGV[1] now (ms)  ARGV[2] lease until (ms)  ARGV[3] limit  ARGV[4] holder token
-- Returns a flat list: id1, envelope1, deliveries1, id2, envelope2, deliveries2, ...; or
-- {next_visible_ms} as a one-element list when nothing is pending (-1 when nothing is
-- waiting at all).
local now, until_ms, limit, token = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local clock = tonumber(redis.call('GET', KEYS[8]) or '0')
-- A message coming back (due, or its holder gone) takes the queue's next turn.
local function make_pending(id)
    local priority = priority_of(KEYS[5], id)
    local seq = math.max(tonumber(redis.call('GET', KEYS[7]) or '0'), clock) + 1
    redis.call('SET', KEYS[7], string.format('%.0f', seq))
    redis.call('ZADD', KEYS[1], (9 - priority) * 1e13 + seq, id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)) do
    redis.call('ZREM', KEYS[2], id)
    make_pending(id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)) do
    redis.call('ZREM', KEYS[3], id)
    redis.call('HDEL', KEYS[6], id)
    make_pending(id)
end
local popped = redis.call('ZPOPMIN', KEYS[1], limit)
if #popped == 0 then
    local next = -1
    local s = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    if #s > 0 then next = tonumber(s[2]) end
    local l = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
    if #l > 0 and (next < 0 or tonumber(l[2]) < next) then next = tonumber(l[2]) end
    return {next}
end
local ids, leases, holders = {}, {}, {}
local newest = clock
for i = 1, #popped, 2 do
    local id = popped[i]
    newest = math.max(newest, math.fmod(tonumber(popped[i + 1]), 1e13))
    ids[#ids + 1] = id
    leases[#leases + 1] = until_ms
    leases[#leases + 1] = id
    holders[#holders + 1] = id
    holders[#holders + 1] = token
end
if newest > clock then redis.call('SET', KEYS[8], string.format('%.0f', newest)) end
bulk('ZADD', KEYS[3], leases)
bulk('HSET', KEYS[6], holders)
local envelopes = bulk('HMGET', KEYS[4], ids)
local out = {}
for i, id in ipairs(ids) do
    out[#out + 1] = id
    out[#out + 1] = envelopes[i] or ''
    out[#out + 1] = math.floor(add_deliveries(KEYS[5], id, 10) / 10)
end
return out
