-- Serialises the members of chord $1 recording at once, so the one completing the set
-- sees it complete (released at commit).
SELECT pg_advisory_xact_lock(hashtextextended($1, 0))
