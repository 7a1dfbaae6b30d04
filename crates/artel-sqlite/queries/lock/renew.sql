-- Extends a lease its holder still has (not lapsed, not taken since).
UPDATE lock SET expires_at = :expires_at WHERE key = :key AND token = :token AND expires_at > :now;
