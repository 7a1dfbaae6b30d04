INSERT INTO control_replies (ticket, posted_at, body) VALUES (:ticket, :now, :body)
