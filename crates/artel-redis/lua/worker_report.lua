-- Records a worker's report and takes any stop asked of it.
-- KEYS[1] HASH worker name -> report JSON, and "!stop:<name>" -> 1 while a stop is asked
-- ARGV[1] worker name  ARGV[2] report JSON
-- Returns 1 when a stop was asked (the request is taken), else 0.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HDEL', KEYS[1], '!stop:' .. ARGV[1])
