-- Deletes a message its holder has finished, unless the holder lost the lease.
-- (Prepended with lib/common.lua.)
-- KEYS[1] leases zset  KEYS[2] messages hash  KEYS[3] priorities hash  KEYS[4] holders hash
-- ARGV[1] id  ARGV[2] holder token
-- Returns 1 when deleted, 0 when the caller no longer held it.
return drop_held(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2])
