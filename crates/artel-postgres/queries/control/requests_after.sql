SELECT id, body FROM control_requests WHERE id > $1 ORDER BY id LIMIT 100
