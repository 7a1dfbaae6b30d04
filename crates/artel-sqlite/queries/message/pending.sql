-- Messages of a queue not yet acknowledged (ready, delayed or held), read off the
-- claim index; with :limit it stops early, so "is anything left?" costs O(1).
SELECT count(*) FROM (SELECT 1 FROM messages WHERE queue = :queue LIMIT :limit)
