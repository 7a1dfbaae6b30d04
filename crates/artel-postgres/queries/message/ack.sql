-- Removes message $1 if holder $2 still holds it.
DELETE FROM messages WHERE id = $1 AND lease_token = $2
