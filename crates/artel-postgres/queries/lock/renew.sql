-- Extends lock $1's lease to $4 if token $2 still holds it (not lapsed at $3, not taken since).
UPDATE lock SET expires_at = $4 WHERE key = $1 AND token = $2 AND expires_at > $3
