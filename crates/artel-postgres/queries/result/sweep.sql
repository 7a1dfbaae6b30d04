-- Deletes up to $2 results expired by $1, oldest first. Written so that the plan stays an
-- index walk whatever the statistics say (a fresh schema has none): the expiry index in
-- order, stopping at the first live result, then the primary key for each one found.
DELETE FROM results
WHERE task_id = ANY (ARRAY(SELECT task_id FROM results WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2))
