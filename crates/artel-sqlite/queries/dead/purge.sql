DELETE FROM dead WHERE :queue IS NULL OR queue = :queue
