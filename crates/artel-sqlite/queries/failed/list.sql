-- Recorded failures, newest first, filtered by queue, task name and time when given.
SELECT entry FROM failed
WHERE (:queue IS NULL OR queue = :queue)
  AND (:task IS NULL OR task = :task)
  AND (:since IS NULL OR failed_at >= :since)
ORDER BY id DESC
LIMIT :limit
