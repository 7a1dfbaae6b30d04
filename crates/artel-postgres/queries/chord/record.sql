INSERT INTO chord_parts (group_id, idx, result, expires_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (group_id, idx) DO UPDATE SET result = excluded.result, expires_at = excluded.expires_at
