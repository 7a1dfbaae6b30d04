-- Asks a reporting worker to stop at its next report (worker_report.lua takes it).
-- KEYS[1] the reports hash (see worker_report.lua)
-- ARGV[1] worker name
-- Returns 1 when the worker reports here and the request is recorded, else 0.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], '!stop:' .. ARGV[1], 1)
return 1
