DELETE FROM dead WHERE $1::text IS NULL OR queue = $1
