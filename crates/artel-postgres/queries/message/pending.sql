-- Messages of a queue not yet acknowledged (ready, delayed or held), read off the
-- claim index; the limit stops it early, so "is anything left?" costs O(1).
SELECT count(*) FROM (SELECT 1 FROM messages WHERE queue = $1 LIMIT $2) AS left_over
