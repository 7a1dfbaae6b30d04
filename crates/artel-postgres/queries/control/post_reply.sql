INSERT INTO control_replies (ticket, posted_at, body) VALUES ($1, $2, $3)
