-- Shared helpers, prepended to the scripts that need them when they are loaded.

-- Forgets a held message entirely if `token` still holds it. Returns 1 when it did.
local function drop_held(leases, messages, priorities, holders, id, token)
    if redis.call('HGET', holders, id) ~= token then return 0 end
    redis.call('ZREM', leases, id)
    redis.call('HDEL', messages, id)
    redis.call('HDEL', priorities, id)
    redis.call('HDEL', holders, id)
    return 1
end

-- Adds `by` to the priorities field of `id` (priority + 10 x deliveries not handed back)
-- and returns it; junk another program wrote there becomes priority 0 instead of an
-- error that would stop every claim.
local function add_deliveries(priorities, id, by)
    local n = redis.pcall('HINCRBY', priorities, id, by)
    if type(n) ~= 'number' then
        n = math.max(by, 0)
        redis.call('HSET', priorities, id, n)
    end
    return n
end

-- The priority (0-9) of `id`, 0 when its field is missing or junk.
local function priority_of(priorities, id)
    return math.floor(tonumber(redis.call('HGET', priorities, id)) or 0) % 10
end

-- Runs `command key args...` over a flat list of arguments in as few calls as Lua's
-- unpack allows (1,000 at a time: pairs stay whole), and returns the replies' elements
-- in order (HMGET's missing fields are false). One call per batch instead of one per
-- message is most of what a script costs Redis.
local function bulk(command, key, args)
    local replies = {}
    for i = 1, #args, 1000 do
        local reply = redis.call(command, key, unpack(args, i, math.min(i + 999, #args)))
        if type(reply) == 'table' then
            for _, v in ipairs(reply) do replies[#replies + 1] = v end
        end
    end
    return replies
end
