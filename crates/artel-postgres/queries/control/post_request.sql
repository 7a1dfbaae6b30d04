-- Posts a request ($3, at $1) and forgets the requests and replies posted before $2.
WITH forgotten_requests AS (DELETE FROM control_requests WHERE posted_at < $2),
     forgotten_replies AS (DELETE FROM control_replies WHERE posted_at < $2)
INSERT INTO control_requests (posted_at, body) VALUES ($1, $3)
