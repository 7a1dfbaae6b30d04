-- Recorded failures, newest first, filtered by queue ($1), task name ($2) and time ($3)
-- when given, at most $4.
SELECT entry FROM failed
WHERE ($1::text IS NULL OR queue = $1)
  AND ($2::text IS NULL OR task = $2)
  AND ($3::bigint IS NULL OR failed_at >= $3)
ORDER BY id DESC
LIMIT $4
