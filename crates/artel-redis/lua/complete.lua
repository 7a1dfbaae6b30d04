-- Stores a finished task's result and acknowledges its message in one step: the result
-- is written unless a final one is there (then kept) and announced; the ack happens only
-- if the caller still holds the message. (Prepended with lib/common.lua.) Touches the
-- result key's slot too, so under Redis Cluster the worker stores and acks separately.
-- KEYS[1] leases zset  KEYS[2] messages hash  KEYS[3] priorities hash  KEYS[4] holders hash
-- KEYS[5] result key
-- ARGV[1] id  ARGV[2] holder token  ARGV[3] result JSON  ARGV[4] result ttl ms (0 = keep)
-- Returns {written (1/0), acked (1/0)}.
local written = write_result(KEYS[5], ARGV[3], ARGV[4])
local acked = drop_held(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
return {written, acked}
