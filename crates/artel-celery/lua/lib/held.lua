-- Shared by the scripts that move held messages (prepended when they are loaded).

-- Splits a held entry, kombu's `[envelope, exchange, routing_key]` as Python's json.dumps
-- or artel's claim.lua wrote it, into the envelope's original bytes and the routing key,
-- without decoding the envelope: it may hold what Lua's JSON reader accepts but cannot
-- write back (Python's Infinity and NaN, 1e400, deep nesting). A message is moved as the
-- bytes it arrived as, never decoded and encoded again. Returns nil when the entry is
-- not in that shape.
local function split_held(held)
    return string.match(held, '^%[(.*),%s*"[^"\\]*",%s*"([^"\\]*)"%]$')
end

-- The kombu priority of an envelope (0 when it cannot be read).
local function envelope_priority(envelope)
    local ok, message = pcall(cjson.decode, envelope)
    local properties = ok and type(message) == 'table' and message['properties']
    return type(properties) == 'table' and tonumber(properties['priority']) or 0
end

-- Pushes `envelope` (or, when it could not be read, the raw held entry) to the dead
-- list with `queue` and `reason`, in the layout `artel dead` reads.
local function push_dead(dead, queue, reason, envelope)
    local entry = cjson.encode({queue = queue, reason = reason})
    redis.call('LPUSH', dead, string.sub(entry, 1, -2) .. ',"envelope":' .. cjson.encode(envelope) .. '}')
end
