-- Puts one held message back on its list, or dead-letters it with a reason, moving the
-- envelope's original bytes (lib/held.lua). (Prepended with lib/held.lua.)
-- Handing back undoes the delivery's count; dead-lettering forgets it.
-- KEYS[1] unacked HASH  KEYS[2] unacked_index ZSET  KEYS[3] target LIST  KEYS[4] deliveries HASH
-- KEYS[5] dead LIST
-- ARGV[1] delivery tag  ARGV[2] 'LPUSH' (back of the queue), 'RPUSH' (delivered next)
--   or 'DEAD' (push {queue, reason, envelope} to the target)  ARGV[3] queue  ARGV[4] reason
-- Returns 1 when moved, 0 when it was not held (acked or restored elsewhere).
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then
    return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == 'DEAD' or tonumber(redis.call('HINCRBY', KEYS[4], ARGV[1], -1)) <= 0 then
    redis.call('HDEL', KEYS[4], ARGV[1])
end
local envelope = split_held(held)
if not envelope then
    push_dead(KEYS[5], ARGV[3], 'a held entry that is not [envelope, exchange, routing_key]', held)
elseif ARGV[2] == 'DEAD' then
    push_dead(KEYS[3], ARGV[3], ARGV[4], envelope)
else
    redis.call(ARGV[2], KEYS[3], envelope)
end
return 1
