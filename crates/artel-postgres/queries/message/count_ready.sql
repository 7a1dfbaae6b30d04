SELECT count(*) FROM messages WHERE queue = $1 AND visible_at <= $2 AND lease_token IS NULL
