-- Records passing the filter (NULL: any), most recently updated first.
SELECT record FROM history
WHERE ($1::text IS NULL OR state = $1)
  AND ($2::text IS NULL OR task = $2)
  AND ($3::text IS NULL OR queue = $3)
  AND ($4::bigint IS NULL OR updated >= $4)
ORDER BY seq DESC
LIMIT $5
