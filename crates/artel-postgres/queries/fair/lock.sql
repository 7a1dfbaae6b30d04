-- Keeps queue $1's publishes with groups out until this transaction ends (they take the
-- same lock shared), so the groups dropped next are seen with every message committed.
SELECT pg_advisory_xact_lock(hashtext('artel.fair.' || $1))
