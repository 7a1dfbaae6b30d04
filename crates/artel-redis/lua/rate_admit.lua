-- Asks to start one run under a shared rate limit (artel_core::rates::admit, in Lua).
-- KEYS[1] the limit (hash: ready = unix µs the next run may start, booked = where the
--         booked slots end)
-- ARGV[1] interval between runs in µs  ARGV[2] '1' to book the next free slot if refused
-- Returns 0 when the run may start now, else the µs to wait (to its booked slot, when
-- booking). Times are the server's, so every worker agrees on them.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local step = math.max(tonumber(ARGV[1]), 1)
local ready = tonumber(redis.call('HGET', KEYS[1], 'ready') or '0')
local booked = tonumber(redis.call('HGET', KEYS[1], 'booked') or '0')
local wait = 0
if ready <= now then
  ready = now + step
  booked = math.max(booked, ready)
elseif ARGV[2] == '1' then
  local slot = math.max(booked, ready)
  booked = slot + step
  wait = slot - now
else
  return ready - now
end
redis.call('HSET', KEYS[1], 'ready', string.format('%.0f', ready), 'booked', string.format('%.0f', booked))
-- Once every booked slot passed, the key admits as a missing one does.
redis.call('PEXPIRE', KEYS[1], math.ceil((booked - now) / 1000) + 1000)
return wait
