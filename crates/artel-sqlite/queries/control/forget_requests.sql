DELETE FROM control_requests WHERE posted_at < :before
