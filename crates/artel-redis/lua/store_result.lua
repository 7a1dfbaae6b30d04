-- Stores a result unless a final one is already there, and announces it on the
-- channel named like the key. (Prepended with lib/result.lua; run by toolkit::store_result.)
-- KEYS[1] result key
-- ARGV[1] result JSON (with a "status" field)  ARGV[2] ttl ms (0 = keep)
-- Returns 1 when written, 0 when a final result was kept.
return write_result(KEYS[1], ARGV[1], ARGV[2])
