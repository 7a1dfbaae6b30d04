-- Stores finished tasks' results and acknowledges their messages, many of one queue in
-- one call: each result is written unless a final one is there (then kept) and
-- announced; each ack happens only if its holder still holds the message. (Prepended
-- with lib/common.lua.) Touches the result keys' slots too, so under Redis Cluster the
-- worker stores and acks separately.
-- KEYS[1] leases zset  KEYS[2] messages hash  KEYS[3] priorities hash  KEYS[4] holders hash
-- KEYS[4 + i] result key of row i
-- ARGV[4i - 3] id  ARGV[4i - 2] holder token  ARGV[4i - 1] result JSON
-- ARGV[4i] result ttl ms (0 = keep), for each row i
-- Returns {written_1 (1/0), acked_1 (1/0), written_2, acked_2, ...}.
local n = #KEYS - 4
local ids = {}
for i = 1, n do ids[i] = ARGV[4 * i - 3] end
local holders = bulk('HMGET', KEYS[4], ids)
local out, acked = {}, {}
for i = 1, n do
    local at = 4 * (i - 1)
    out[#out + 1] = write_result(KEYS[4 + i], ARGV[at + 3], ARGV[at + 4])
    if holders[i] == ARGV[at + 2] then
        acked[#acked + 1] = ids[i]
        out[#out + 1] = 1
    else
        out[#out + 1] = 0
    end
end
-- What drop_held does for one, for all the acked ones at once.
bulk('ZREM', KEYS[1], acked)
bulk('HDEL', KEYS[2], acked)
bulk('HDEL', KEYS[3], acked)
bulk('HDEL', KEYS[4], acked)
return out
