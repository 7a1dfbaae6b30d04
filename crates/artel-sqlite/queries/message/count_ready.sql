SELECT count(*) FROM messages WHERE queue = :queue AND visible_at <= :now AND lease_token IS NULL
