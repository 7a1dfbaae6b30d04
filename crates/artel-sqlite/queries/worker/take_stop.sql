-- Takes a stop asked of the worker: a row when there was one.
UPDATE workers SET stop_requested = 0 WHERE name = :name AND stop_requested = 1 RETURNING name
