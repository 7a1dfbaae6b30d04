-- Writes a cached value: unconditionally, or only over the version its writer read.
-- KEYS[1] entry (hash: v the value, n its version)
-- ARGV[1] '*' to write whatever is there, '' to write only where there is no entry, or
--         the version read  ARGV[2] value  ARGV[3] time to live in ms (0: none)
-- Returns the new version, or 0 when the entry is not the one read. A version is above
-- the entry's last one and the server's clock in microseconds, so a key written again
-- after it expired never repeats a version a reader may still hold.
local current = redis.call('HGET', KEYS[1], 'n')
if ARGV[1] ~= '*' and (current or '') ~= ARGV[1] then
  return 0
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local version = math.max(now, tonumber(current or '0') + 1)
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'n', string.format('%.0f', version))
if tonumber(ARGV[3]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('PERSIST', KEYS[1])
end
return version
