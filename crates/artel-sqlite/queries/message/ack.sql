DELETE FROM messages WHERE id = :id AND lease_token = :token
