INSERT INTO control_requests (posted_at, body) VALUES (:now, :body)
