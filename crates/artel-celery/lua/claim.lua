-- Takes up to ARGV[2] messages off a consumer's lists (best priority first) and records
-- each as held, in one step, so a consumer dying here loses nothing (kombu's BRPOP +
-- MULTI has a gap). Envelopes without a delivery tag go to the dead list.
-- (Prepended with lib/held.lua.)
-- KEYS[1] unacked HASH  KEYS[2] unacked_index ZSET  KEYS[3] dead LIST
-- KEYS[4] deliveries HASH (tag -> deliveries not handed back)  KEYS[5..] lists
-- ARGV[1] now (unix seconds)  ARGV[2] most to take
-- Returns a flat list of strings: tag, envelope, deliveries, tag, envelope, deliveries, ...
local taken = {}
local want = tonumber(ARGV[2])
for i = 5, #KEYS do
    while #taken < want * 3 do
        local envelope = redis.call('RPOP', KEYS[i])
        if not envelope then
            break
        end
        local ok, message = pcall(cjson.decode, envelope)
        local properties = ok and type(message) == 'table' and message['properties']
        local tag = type(properties) == 'table' and properties['delivery_tag']
        if type(tag) == 'string' and tag ~= '' then
            local info = properties['delivery_info']
            if type(info) ~= 'table' then
                info = {}
            end
            local held = '[' .. envelope .. ',' .. cjson.encode(info['exchange'] or '') .. ','
                .. cjson.encode(info['routing_key'] or '') .. ']'
            redis.call('HSET', KEYS[1], tag, held)
            redis.call('ZADD', KEYS[2], ARGV[1], tag)
            table.insert(taken, tag)
            table.insert(taken, envelope)
            table.insert(taken, tostring(redis.call('HINCRBY', KEYS[4], tag, 1)))
        else
            push_dead(KEYS[3], KEYS[i], 'not a kombu envelope with a delivery_tag', envelope)
        end
    end
end
return taken
