-- Stores finished tasks' results and forgets their held messages, many in one call, so a
-- result is never stored without the ack or acked without the result. (Prepended with
-- artel-redis's lua/lib/result.lua.) kombu's ack is unguarded: every message is forgotten.
-- KEYS[1] unacked HASH  KEYS[2] unacked_index ZSET  KEYS[3] deliveries HASH
-- KEYS[3 + i] celery-task-meta-<id> of row i (at most 128 rows: one unpack each)
-- ARGV[3i - 2] result JSON  ARGV[3i - 1] ttl ms (0 = keep)  ARGV[3i] delivery tag, for each row i
-- Returns {written_1, written_2, ...}: 1 when the result was written, 0 when a final one was kept.
local out, tags = {}, {}
for i = 1, #KEYS - 3 do
    local at = 3 * (i - 1)
    out[i] = write_result(KEYS[3 + i], ARGV[at + 1], ARGV[at + 2])
    tags[i] = ARGV[at + 3]
end
if #tags > 0 then
    redis.call('ZREM', KEYS[2], unpack(tags))
    redis.call('HDEL', KEYS[1], unpack(tags))
    redis.call('HDEL', KEYS[3], unpack(tags))
end
return out
