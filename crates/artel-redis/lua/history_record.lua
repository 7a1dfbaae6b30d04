-- Records task records (artel_core::TaskHistory): each replaces its task's record and
-- takes the next write sequence; finished ones are counted in their minute; the oldest
-- records beyond the bound and minutes before the cut-off are dropped.
-- A record's entry in its state's index is not removed when its state changes (that
-- would cost a read per record): readers skip entries whose record moved on, and the
-- indexes are trimmed by sequence with the records. Writes are variadic commands, in
-- chunks, so a batch costs a few commands per key, not per record.
-- KEYS[1] HASH task id -> record JSON     KEYS[2] ZSET task id -> write sequence
-- KEYS[3] STRING write sequence
-- KEYS[4] HASH "<minute ms>:s|f" -> count KEYS[5] ZSET minute ms -> minute ms
-- KEYS[6] state index prefix (ZSET "<prefix><STATE>": task id -> write sequence)
-- ARGV[1] records kept  ARGV[2] minutes older than this (ms) are dropped
-- ARGV[3] n, the number of records (distinct task ids)
-- ARGV[4..3+3n] per record: task id, state, record JSON
-- ARGV[4+3n..] per minute: minute ms, succeeded, failed
-- Returns how many records were dropped.
local records, recent, seq, minutes, minute_index, by_state =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local CHUNK = 2000
local STATES = { 'PENDING', 'RECEIVED', 'STARTED', 'SUCCESS', 'FAILURE', 'RETRY', 'REVOKED',
  'REJECTED', 'IGNORED', 'PROGRESS' }

local function call_chunked(command, key, args)
  for i = 1, #args, CHUNK do
    redis.call(command, key, unpack(args, i, math.min(i + CHUNK - 1, #args)))
  end
end

local n = tonumber(ARGV[3])
local first = redis.call('INCRBY', seq, n) - n
local json_pairs, recent_pairs, by_state_pairs = {}, {}, {}
for k = 1, n do
  local at = 1 + 3 * k
  local id, state, json = ARGV[at], ARGV[at + 1], ARGV[at + 2]
  json_pairs[2 * k - 1], json_pairs[2 * k] = id, json
  recent_pairs[2 * k - 1], recent_pairs[2 * k] = first + k, id
  local list = by_state_pairs[state]
  if not list then list = {}; by_state_pairs[state] = list end
  list[#list + 1] = first + k
  list[#list + 1] = id
end
call_chunked('HSET', records, json_pairs)
call_chunked('ZADD', recent, recent_pairs)
for state, list in pairs(by_state_pairs) do call_chunked('ZADD', by_state .. state, list) end

for at = 4 + 3 * n, #ARGV, 3 do
  local minute = ARGV[at]
  redis.call('HINCRBY', minutes, minute .. ':s', ARGV[at + 1])
  redis.call('HINCRBY', minutes, minute .. ':f', ARGV[at + 2])
  redis.call('ZADD', minute_index, minute, minute)
end

local dropped = 0
local excess = redis.call('ZCARD', recent) - tonumber(ARGV[1])
if excess > 0 then
  local gone = redis.call('ZRANGE', recent, 0, excess - 1, 'WITHSCORES')
  local ids = {}
  for i = 1, #gone, 2 do ids[#ids + 1] = gone[i] end
  call_chunked('HDEL', records, ids)
  redis.call('ZREMRANGEBYRANK', recent, 0, excess - 1)
  local last = gone[#gone]
  for _, state in ipairs(STATES) do
    redis.call('ZREMRANGEBYSCORE', by_state .. state, '-inf', last)
  end
  dropped = excess
end

for _, minute in ipairs(redis.call('ZRANGEBYSCORE', minute_index, '-inf', '(' .. ARGV[2])) do
  redis.call('HDEL', minutes, minute .. ':s', minute .. ':f')
end
redis.call('ZREMRANGEBYSCORE', minute_index, '-inf', '(' .. ARGV[2])
return dropped
