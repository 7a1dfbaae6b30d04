-- Records passing the filter (NULL: any), most recently updated first.
SELECT record FROM history
WHERE (:state IS NULL OR state = :state)
  AND (:task IS NULL OR task = :task)
  AND (:queue IS NULL OR queue = :queue)
  AND (:since IS NULL OR updated >= :since)
ORDER BY seq DESC
LIMIT :limit
