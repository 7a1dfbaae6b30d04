-- Where the board stands: the newest request's id (0 when none is kept).
SELECT coalesce(max(id), 0) FROM control_requests
