-- How many groups a queue has (0: it is claimed oldest first, without groups).
SELECT count(*) FROM fair_groups WHERE queue = :queue
