SELECT id, body FROM control_requests WHERE id > :cursor ORDER BY id LIMIT 100
