SELECT queue, count(*) FROM dead GROUP BY queue ORDER BY queue
